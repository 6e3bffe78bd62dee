-- One counter that every change to a credential (a client, an API key, or what decides whether
-- a key may be used: its owner user or organization) increments in the same transaction.
-- Servers cache credentials and keep using a cached one only while the counter has not moved,
-- checked by a read that starts after the request arrived: see src/store/credential_cache.rs.
-- A change made by hand in SQL must increment it too, or servers may keep using the old value.

CREATE TABLE credential_generation (
    id          BIGINT PRIMARY KEY,   -- always 1: a single row
    generation  BIGINT NOT NULL
);
INSERT INTO credential_generation (id, generation) VALUES (1, 0);
