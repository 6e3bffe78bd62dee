-- One value that every change to a credential (a client, an API key, or what decides whether
-- a key may be used: its owner user or organization) replaces with a new random value, in the
-- same transaction. Servers cache credentials and keep using a cached one only while the value
-- has not changed, checked by a read that starts after the request arrived: see
-- src/store/credential_cache.rs. A change made by hand in SQL should change it too; otherwise
-- servers notice only when their cached entries age out (after a minute).

CREATE TABLE credential_generation (
    id          BIGINT PRIMARY KEY,   -- always 1: a single row
    generation  BIGINT NOT NULL
);
INSERT INTO credential_generation (id, generation) VALUES (1, 0);
