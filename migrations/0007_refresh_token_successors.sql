-- The refresh retry window (see docs/decisions.md, "A refresh retry window"): a rotated
-- refresh token remembers its successor, by hash, and sealed under a key only the holder of
-- the rotated token can derive, so that a retry within the window gets the same successor.
ALTER TABLE refresh_tokens ADD COLUMN successor_hash TEXT;
ALTER TABLE refresh_tokens ADD COLUMN successor_sealed TEXT;
