-- Schema version 3: events queued by `queue_test` (`hook test`) are marked, so their
-- deliveries (and redeliveries) show as tests in the log.
ALTER TABLE events ADD COLUMN test INTEGER NOT NULL DEFAULT 0;
