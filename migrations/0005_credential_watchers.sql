-- PostgreSQL replicas answer from their credential caches without reading the generation per
-- request while they hold a lease here, and a credential change is reported done only once
-- every replica with a live lease has acknowledged it: see src/store/propagation.rs. SQLite
-- servers leave this table empty.

-- Counts credential changes, so that a replica can say how far it has caught up.
ALTER TABLE credential_generation ADD COLUMN change_count BIGINT NOT NULL DEFAULT 0;

CREATE TABLE credential_watchers (
    id                TEXT PRIMARY KEY,   -- random per server process
    lease_expires_ms  BIGINT NOT NULL,    -- by the database's clock, ms since the Unix epoch
    acked_count       BIGINT NOT NULL     -- the change_count its cache has caught up with
);
