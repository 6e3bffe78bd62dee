-- One portable schema for SQLite and PostgreSQL: only TEXT and BIGINT columns, times as Unix
-- seconds, lists as JSON text. (sqlx's Any driver decodes exactly these on both databases.)

CREATE TABLE clients (
    id                          TEXT PRIMARY KEY,
    name                        TEXT NOT NULL,
    -- SHA-256 hex of the server-generated secret; NULL for public clients.
    secret_hash                 TEXT,
    token_endpoint_auth_method  TEXT NOT NULL,
    redirect_uris               TEXT NOT NULL, -- JSON array, matched exactly
    grant_types                 TEXT NOT NULL, -- JSON array
    scope                       TEXT NOT NULL, -- space-delimited (RFC 6749 §3.3)
    resources                   TEXT NOT NULL, -- JSON array of RFC 8707 resources it may ask for
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,        -- admin | personal | organization | service
    name            TEXT NOT NULL,
    key_hash        TEXT NOT NULL UNIQUE, -- SHA-256 hex of the whole key
    display_prefix  TEXT NOT NULL,        -- not secret: helps a person tell keys apart
    scope           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT,
    revoked_at      BIGINT,
    last_used_at    BIGINT
);
