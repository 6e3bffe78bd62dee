-- The refresh retry window (see docs/decisions.md, "A refresh retry window"): a rotated
-- refresh token remembers its successor, by hash, and sealed under a key only the holder of
-- the rotated token can derive, so that a retry within the window gets the same successor.
-- A token also names the token it succeeded, so that rotating it forgets its predecessor's
-- seal with one look-up by key: a family keeps one seal at most.
ALTER TABLE refresh_tokens ADD COLUMN successor_hash TEXT;
ALTER TABLE refresh_tokens ADD COLUMN successor_sealed TEXT;
ALTER TABLE refresh_tokens ADD COLUMN predecessor_hash TEXT;
