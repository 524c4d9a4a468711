-- Schema version 10: idempotency keys of accepted events, one row per (namespace, key) for as
-- long as the key's window lasts. A request that comes again with the same key and the same
-- event (type and payload: `fingerprint`) is answered from this row and stores nothing; the
-- same key with another event is refused. Written in the transaction that stores the event;
-- deleted by a prune once `expires_at` has passed (an expired row still present counts as
-- absent, and is replaced by the next use of its key).
CREATE TABLE idempotency_keys (
    namespace_id INTEGER NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    fingerprint  BLOB NOT NULL,    -- SHA-256 of the event type and the stored payload
    event_uuid   BLOB NOT NULL,    -- the event stored under it, as first answered
    event        INTEGER NOT NULL, -- its type (bit position)
    matched      INTEGER NOT NULL, -- the webhooks it was queued for, as first answered
    created_at   INTEGER NOT NULL, -- Unix ns
    expires_at   INTEGER NOT NULL, -- Unix ns: created_at plus the window it was stored with
    PRIMARY KEY (namespace_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
