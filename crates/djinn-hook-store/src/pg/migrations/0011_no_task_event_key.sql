-- Every task inserted for an event took a share lock on the event's row (the foreign key's
-- check), a WAL record per task. The intake inserts the event and its tasks in one transaction,
-- so the check guards nothing there; the other paths that queue a task for an existing event
-- (a redelivery, a recovery) take the same lock themselves, and pruning deletes an event's
-- tasks with it, in its transaction, as the cascade did.
ALTER TABLE tasks DROP CONSTRAINT tasks_event_id_fkey;
