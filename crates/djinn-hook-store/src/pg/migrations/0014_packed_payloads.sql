-- Payloads and attempts' headers are written packed (zstd with a fixed dictionary; packed.rs):
-- a third to a quarter of their plain size, in the table and in the WAL. PostgreSQL's own
-- compression (pglz, or lz4) starts only past about 2 KB a row, has no dictionary, and left
-- a 2 KB payload at 800 bytes. Rows written before keep their plain columns: a row has one
-- or the other.
ALTER TABLE events
    ALTER COLUMN payload DROP NOT NULL,
    ADD COLUMN payload_packed BYTEA;
ALTER TABLE deliveries
    ALTER COLUMN request_headers DROP NOT NULL,
    ALTER COLUMN response_headers DROP NOT NULL,
    ADD COLUMN request_headers_packed BYTEA,
    ADD COLUMN response_headers_packed BYTEA;
-- A packed value does not compress again: PostgreSQL need not try.
ALTER TABLE events ALTER COLUMN payload_packed SET STORAGE EXTERNAL;
