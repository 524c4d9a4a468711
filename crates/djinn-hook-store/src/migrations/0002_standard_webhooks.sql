-- Schema version 2: opt-in Standard Webhooks headers.
ALTER TABLE webhooks ADD COLUMN standard_webhooks INTEGER NOT NULL DEFAULT 0;
