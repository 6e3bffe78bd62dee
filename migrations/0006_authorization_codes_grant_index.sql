-- Deleting a grant (by pruning, or with its user or client) deletes its codes by
-- foreign key, and pruning asks whether a grant still has any: both look codes up by grant.
CREATE INDEX authorization_codes_grant ON authorization_codes (grant_id);
