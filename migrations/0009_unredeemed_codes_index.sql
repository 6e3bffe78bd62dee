-- Pruning finds codes never redeemed by their expiry, every few minutes, without reading the
-- redeemed ones, which stay as long as their grant.
CREATE INDEX authorization_codes_unredeemed ON authorization_codes (expires_at) WHERE redeemed_at IS NULL;
