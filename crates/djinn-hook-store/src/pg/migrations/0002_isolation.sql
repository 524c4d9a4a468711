-- Schema version 2: per-receiver isolation (SQLite's version 4).
-- A webhook's own delivery limits; NULL leaves them to the worker's defaults.
ALTER TABLE webhooks ADD COLUMN max_in_flight BIGINT;
ALTER TABLE webhooks ADD COLUMN timeout_ms BIGINT;
-- The open circuit breaker that last put this webhook's deliveries off: its destination
-- (scheme://host:port), until when (Unix ns), and why. Cleared when the breaker closes or the
-- webhook has a delivery succeed.
ALTER TABLE webhooks ADD COLUMN breaker_destination TEXT;
ALTER TABLE webhooks ADD COLUMN breaker_until BIGINT;
ALTER TABLE webhooks ADD COLUMN breaker_reason TEXT;
-- A claim goes webhook by webhook (fair across them, each under its cap): a webhook's due
-- tasks are one range of this index, its live leases (counted for the cap) another.
CREATE INDEX tasks_hook_due ON tasks (hook_id, next_at) WHERE state = 0;
