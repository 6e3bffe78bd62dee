-- People, their sessions and consents, and the authorization-code flow's grants and tokens.
-- Same portable rules as 0001: TEXT and BIGINT only, Unix seconds.

-- First-party clients skip the consent page.
ALTER TABLE clients ADD COLUMN skip_consent BIGINT NOT NULL DEFAULT 0;

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    email          TEXT,
    password_hash  TEXT NOT NULL,        -- argon2id PHC string
    disabled_at    BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY,      -- SHA-256 hex of the cookie value
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,       -- for idle expiry
    expires_at    BIGINT NOT NULL        -- absolute expiry
);
CREATE INDEX sessions_user ON sessions (user_id);

-- What a user has allowed a client, remembered so the consent page is shown once.
CREATE TABLE consents (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- One authorization of one client by one user. Its refresh tokens are one family: revoking
-- the grant revokes every token descended from it.
CREATE TABLE grants (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,         -- absolute lifetime of the family
    revoked_at  BIGINT
);
CREATE INDEX grants_user ON grants (user_id);

CREATE TABLE authorization_codes (
    code_hash              TEXT PRIMARY KEY,
    grant_id               TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id              TEXT NOT NULL,
    redirect_uri           TEXT NOT NULL,
    redirect_uri_in_request BIGINT NOT NULL, -- 1 when /authorize named it (RFC 6749 §4.1.3)
    code_challenge         TEXT NOT NULL,    -- S256
    expires_at             BIGINT NOT NULL,
    redeemed_at            BIGINT
);

CREATE TABLE refresh_tokens (
    token_hash       TEXT PRIMARY KEY,
    grant_id         TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    created_at       BIGINT NOT NULL,
    idle_expires_at  BIGINT NOT NULL,
    rotated_at       BIGINT              -- set once it has been exchanged for its successor
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);

-- Access tokens that revocation must be able to reach: those issued for a grant (so revoking
-- the grant revokes them) and any revoked one by jti (RFC 7009).
CREATE TABLE access_tokens (
    jti         TEXT PRIMARY KEY,
    grant_id    TEXT REFERENCES grants (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX access_tokens_grant ON access_tokens (grant_id);

-- Failed sign-ins in the current window, per username and per client address.
CREATE TABLE login_failures (
    throttle_key  TEXT PRIMARY KEY,      -- "user:<username>" or "ip:<address>"
    window_start  BIGINT NOT NULL,
    failures      BIGINT NOT NULL
);
