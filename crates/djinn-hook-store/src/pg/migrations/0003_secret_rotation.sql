-- Schema version 3: secret rotation (SQLite's version 5). While a rotation's overlap lasts,
-- deliveries are signed with the previous secret as well as `secret`: sealed like it (bound
-- to the webhook id) and kept until `previous_secret_until` (Unix ns). Both are NULL when no
-- rotation is under way; a claim ignores a previous secret past its time, and a prune clears it.
ALTER TABLE webhooks ADD COLUMN previous_secret BYTEA;
ALTER TABLE webhooks ADD COLUMN previous_secret_until BIGINT;
