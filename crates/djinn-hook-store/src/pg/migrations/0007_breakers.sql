-- Schema version 7 (PostgreSQL; SQLite's version 9): circuit breakers shared by every process
-- on the database (`serve` and `worker`), one row per destination (scheme://host:port) whose
-- breaker is open or probing; no row: closed. Written only when a breaker changes state (never
-- on a healthy delivery); a process counts failures in a row itself until they open it.
CREATE TABLE breakers (
    destination TEXT PRIMARY KEY,
    failures    BIGINT NOT NULL, -- connect failures or timeouts in a row when it last opened
    reason      TEXT NOT NULL,   -- e.g. "5 consecutive timeouts"
    open_for_ms BIGINT NOT NULL, -- how long it was last opened for (a failed probe doubles it)
    open_until  BIGINT NOT NULL, -- Unix ns: when its probe may go out
    probe_until BIGINT           -- Unix ns: while a process's probe is out, its lease's end
);
