-- An event's public id carries its row, so finding an event by its id reads the primary key
-- and no index of ids is written for each event (a WAL record and 72 bytes an event).
-- event_ids.rs mints and reads them: a version 8 UUID whose last 62 bits hold the row masked
-- with an HMAC of its first 8 (random) bytes, under this database's own key, so an id does
-- not tell a receiver how many events came before it.
CREATE TABLE event_id_key (key BYTEA NOT NULL);
INSERT INTO event_id_key SELECT uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid());

-- Ids minted before this version (random, version 4) keep a unique index of their own, which
-- new ids never enter; two new ids never collide, since each gives back its own row.
ALTER TABLE events DROP CONSTRAINT events_uuid_key;
CREATE UNIQUE INDEX events_uuid_legacy ON events (uuid) WHERE get_byte(uuid_send(uuid), 6) >> 4 <> 8;
