-- PostgreSQL schema version 9 (8 is another change's): what SQLite's version 11 holds, custom
-- headers per webhook (names in clear, values sealed like a secret) and bulk recovery's mark.
ALTER TABLE webhooks ADD COLUMN header_names TEXT;
ALTER TABLE webhooks ADD COLUMN headers BYTEA;
ALTER TABLE deliveries ADD COLUMN recovered BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX deliveries_hook_time ON deliveries (hook_id, created_at);
