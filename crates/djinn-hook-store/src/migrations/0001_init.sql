-- Schema version 1: the tables. Times are Unix nanoseconds (INTEGER), UUIDs 16-byte BLOBs.
CREATE TABLE namespaces (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,            -- "owner/path"
    parent_id  INTEGER REFERENCES namespaces (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);

CREATE TABLE webhooks (
    id              INTEGER PRIMARY KEY,
    namespace_id    INTEGER NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    author_id       INTEGER,
    payload_url     TEXT NOT NULL,
    ssl             INTEGER NOT NULL,
    events          INTEGER NOT NULL,           -- the original's bit mask
    active          INTEGER NOT NULL,
    secret          BLOB,                       -- nonce || AES-256-GCM ciphertext || tag
    created_at      INTEGER NOT NULL,
    disabled_reason TEXT,
    disabled_at     INTEGER,
    failing_since   INTEGER,
    UNIQUE (namespace_id, payload_url)
);

CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    uuid         BLOB NOT NULL UNIQUE,
    namespace_id INTEGER NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    event        INTEGER NOT NULL,              -- bit position of the event type
    payload      BLOB NOT NULL,
    created_at   INTEGER NOT NULL
);

-- One row per (event, webhook): to deliver (state 0), given up on (state 1) or delivered
-- (state 2; kept until its event is pruned, so a late completion can still be logged).
-- A leased task has lease set and next_at = lease expiry, so "claimable" is simply
-- state = 0 AND next_at <= now.
CREATE TABLE tasks (
    id         INTEGER PRIMARY KEY,
    event_id   INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    hook_id    INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    state      INTEGER NOT NULL,
    next_at    INTEGER NOT NULL,
    lease      BLOB,
    attempts   INTEGER NOT NULL DEFAULT 0,
    redelivery INTEGER NOT NULL DEFAULT 0,
    body       BLOB                             -- redelivery: the recorded request body
);
CREATE INDEX tasks_due ON tasks (next_at) WHERE state = 0;
CREATE INDEX tasks_hook ON tasks (hook_id);
CREATE INDEX tasks_event ON tasks (event_id);

-- The delivery log. No REFERENCES here, to keep recording an attempt cheap: hook_id
-- and event_id are copied from the task row, deleting a webhook deletes its deliveries
-- explicitly, and an event is pruned only once no delivery refers to it (so a delivery
-- can always be redelivered, and its request body read from the event: request_body
-- is NULL when the body sent was exactly the event's payload, the usual case).
CREATE TABLE deliveries (
    id                       INTEGER PRIMARY KEY,
    hook_id                  INTEGER NOT NULL,
    event_id                 INTEGER NOT NULL,
    attempt                  INTEGER NOT NULL,
    redelivery               INTEGER NOT NULL,
    request_headers          TEXT NOT NULL,     -- JSON [[name, value], ...]
    request_body             BLOB,              -- NULL: the event's payload
    request_truncated        INTEGER NOT NULL,
    response_status          INTEGER,
    response_headers         TEXT NOT NULL,
    response_body            BLOB NOT NULL,
    response_truncated       INTEGER NOT NULL,
    tls_verification_skipped INTEGER NOT NULL,
    duration_ns              INTEGER NOT NULL,
    error                    TEXT,
    created_at               INTEGER NOT NULL
);
CREATE INDEX deliveries_hook ON deliveries (hook_id);
CREATE INDEX deliveries_event ON deliveries (event_id);
