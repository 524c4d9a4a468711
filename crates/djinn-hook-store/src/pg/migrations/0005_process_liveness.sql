-- Schema version 5 (PostgreSQL; SQLite's version 7): which process holds a claim, so that a
-- dead process's claims come back at once rather than when their leases run out. Each
-- long-running process (serve, worker) registers here under a random id and holds the
-- session-level advisory lock of that id on a connection of its own while it lives; a claim
-- records its holder. No index on holder: a take-back is rare and walks the pending tasks due
-- later (tasks_due), which spares every claim and completion an index write.
CREATE TABLE processes (
    id         BIGINT PRIMARY KEY, -- random, never reused; also its advisory lock's key
    pid        BIGINT NOT NULL,    -- the operating system's process id
    host       TEXT NOT NULL,      -- the machine's host name
    started_at BIGINT NOT NULL     -- Unix ns
);
ALTER TABLE tasks ADD COLUMN holder BIGINT; -- the process whose claim holds the lease
