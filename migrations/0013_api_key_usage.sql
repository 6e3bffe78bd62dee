-- How much each API key is used, per UTC day (`day`: days since 1970-01-01), added up over
-- every server: each server counts in memory and adds its counts every few seconds
-- (docs/decisions.md, "Per-key usage: counted in memory, added up in the database").
-- `last_exchange_ip` is the address of the key's last token exchange that day: the address of
-- an introspection is the resource server's, not the key holder's, so it is not kept. No
-- foreign key: a key pruned while a server still holds its counts must not make the server's
-- writes fail; the rows go after the audit retention, as audit events do.
CREATE TABLE api_key_usage (
    api_key_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    exchanges BIGINT NOT NULL DEFAULT 0,
    introspections BIGINT NOT NULL DEFAULT 0,
    last_used_at BIGINT NOT NULL,
    last_exchange_at BIGINT,
    last_exchange_ip TEXT,
    PRIMARY KEY (api_key_id, day)
);
CREATE INDEX api_key_usage_by_day ON api_key_usage (day);
