-- What a claim writes is kept apart from the task, in tables whose changes PostgreSQL does not
-- log: a lease is worth keeping only while its holder runs, and losing every lease (a server
-- crash, which empties unlogged tables, or a failover to a replica, which never had them) makes
-- the tasks under way due again, as their holders' deaths would. A claim then writes no WAL
-- for its tasks: no row lock, no new row version, no index entries.
CREATE UNLOGGED TABLE task_leases (
    task_id BIGINT PRIMARY KEY,
    hook_id BIGINT NOT NULL,
    due_at  BIGINT NOT NULL, -- the task's next_at when claimed (unchanged by the claim)
    lease   UUID NOT NULL,
    until   BIGINT NOT NULL, -- Unix ns: the lease's end
    attempt BIGINT NOT NULL, -- the attempt this claim counted; tasks.attempts counts the ended ones
    holder  BIGINT           -- the process whose claim holds it
);
CREATE INDEX task_leases_hook ON task_leases (hook_id);
CREATE INDEX task_leases_holder ON task_leases (holder);

-- The leases held when the schema changes go with their tasks; a leased task's next_at was
-- its lease's end, so it becomes due at that end, as it would have.
INSERT INTO task_leases (task_id, hook_id, due_at, lease, until, attempt, holder)
    SELECT id, hook_id, next_at, lease, next_at, attempts, holder
    FROM tasks WHERE state = 0 AND lease IS NOT NULL;
UPDATE tasks SET attempts = GREATEST(attempts - 1, 0) WHERE state = 0 AND lease IS NOT NULL;
ALTER TABLE tasks DROP COLUMN lease;
ALTER TABLE tasks DROP COLUMN holder;

-- Each index of tasks is a WAL record for every task queued. A claim walks tasks_hook_due and
-- a completion finds its task by its key; the global due order (tasks_due), the per-webhook
-- index of every state (tasks_hook) and the per-event one (tasks_event) served only rare
-- paths (the next due time, a webhook's deletion and retry, pruning), which walk the pending
-- tasks per webhook or the table instead.
DROP INDEX tasks_due;
DROP INDEX tasks_hook;
DROP INDEX tasks_event;
-- A recovery's time range walks the webhook's log (deliveries_hook) instead.
DROP INDEX deliveries_hook_time;

-- Foreign keys' checks lock the referenced row (a WAL record per intake transaction, and a
-- multixact when intakes overlap). Namespaces are never deleted, so the events' key guards
-- nothing. A webhook's deletion deletes its tasks itself; a task an intake queued for it at
-- the same moment is never claimed (claims join the active webhooks) and the next prune
-- deletes it.
ALTER TABLE events DROP CONSTRAINT events_namespace_id_fkey;
ALTER TABLE tasks DROP CONSTRAINT tasks_hook_id_fkey;

-- The tasks' key: a completion, a put-off and a release find their task by the webhook and the
-- due time its lease kept, in tasks_hook_due; the rare readers of a task by its id alone (a
-- late completion) walk its webhook's pending tasks.
ALTER TABLE tasks DROP CONSTRAINT tasks_pkey;
-- With the id last, that lookup is one entry even when many tasks share a due time (an
-- intake batch's do).
DROP INDEX tasks_hook_due;
CREATE INDEX tasks_hook_due ON tasks (hook_id, next_at, id) WHERE state = 0;
