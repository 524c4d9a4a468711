-- Schema version 11 (10 is another change's): custom headers per webhook, and bulk recovery.
-- header_names: the JSON array of the custom headers' names, in order (NULL: none), shown as
-- they are; headers: their values, the JSON array of [name, value] pairs sealed like a secret
-- (nonce || AES-256-GCM ciphertext || tag, bound to the webhook's id and the word "headers").
ALTER TABLE webhooks ADD COLUMN header_names TEXT;
ALTER TABLE webhooks ADD COLUMN headers BLOB;
-- recovered: a bulk recovery has queued this delivery's event again (each delivery is the
-- source of at most one recovery). The index serves a recovery's range of one webhook.
ALTER TABLE deliveries ADD COLUMN recovered INTEGER NOT NULL DEFAULT 0;
CREATE INDEX deliveries_hook_time ON deliveries (hook_id, created_at);
