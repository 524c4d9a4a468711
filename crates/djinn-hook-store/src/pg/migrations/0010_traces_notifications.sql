-- Schema version 10 (PostgreSQL; SQLite's version 12): traces and the operator's
-- notifications.
-- The W3C `traceparent` of the event's intake (NULL: none), sent on in every delivery of it.
ALTER TABLE events ADD COLUMN traceparent TEXT;
-- When a destination's breaker first opened in its current run of openings (a failed probe
-- reopens it and keeps this), and whether the operator was told it stayed open too long.
ALTER TABLE breakers ADD COLUMN open_since BIGINT;
ALTER TABLE breakers ADD COLUMN notified BOOLEAN NOT NULL DEFAULT false;
