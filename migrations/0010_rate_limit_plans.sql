-- A key or client may name the rate-limit plan it is held to, one of those the servers are
-- started with (serve --rate-limit-plan); NULL means the servers' default plan, if any
-- (docs/decisions.md, "Rate limits").
ALTER TABLE api_keys ADD COLUMN rate_limit_plan TEXT;
ALTER TABLE clients ADD COLUMN rate_limit_plan TEXT;
