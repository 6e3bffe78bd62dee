-- Clients registered as resource servers may introspect other clients' tokens and API keys;
-- any other client only its own tokens (see docs/decisions.md, "Who may introspect what").
ALTER TABLE clients ADD COLUMN resource_server BIGINT NOT NULL DEFAULT 0;
