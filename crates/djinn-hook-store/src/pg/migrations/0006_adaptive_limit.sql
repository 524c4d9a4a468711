-- Schema version 6 (PostgreSQL; SQLite's version 8): a webhook's adaptive delivery limit as a
-- worker last recorded it: deliveries at once it may have now (0 while paused), why it is
-- below its cap, and until when it is paused after a 429 or 503. All NULL while the limit is
-- at its cap.
ALTER TABLE webhooks ADD COLUMN limit_now BIGINT;
ALTER TABLE webhooks ADD COLUMN limit_reason TEXT;
ALTER TABLE webhooks ADD COLUMN limit_paused_until BIGINT;
