-- Security-relevant changes and events, each written in the same transaction as the change it
-- records (docs/decisions.md, "The audit log and its webhooks"). `details` is a JSON object;
-- nothing here is ever a secret.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    target TEXT,
    ip TEXT,
    user_agent TEXT,
    request_id TEXT,
    details TEXT NOT NULL
);
CREATE INDEX audit_events_by_time ON audit_events (at_ms, id);
CREATE INDEX audit_events_by_target ON audit_events (target, at_ms);
CREATE INDEX audit_events_by_actor ON audit_events (actor, at_ms);

-- Where operators want events sent: the actions each wants (a JSON list of names, `prefix.*`
-- or `*`) and the secret its deliveries are signed with (kept, since every delivery is signed
-- with it; shown once). One server at a time delivers to an endpoint: the one holding its lease.
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    actions TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT,
    lease_owner TEXT,
    lease_until_ms BIGINT NOT NULL DEFAULT 0
);

-- The outbox: one row per event and endpoint that wants it, written with the event, delivered
-- in event order per endpoint and marked when the endpoint acknowledged it.
CREATE TABLE webhook_deliveries (
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id TEXT NOT NULL REFERENCES audit_events (id) ON DELETE CASCADE,
    at_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at_ms BIGINT NOT NULL,
    delivered_at_ms BIGINT,
    last_error TEXT,
    PRIMARY KEY (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_in_order ON webhook_deliveries (endpoint_id, delivered_at_ms, at_ms, event_id);
