-- Schema version 4 (PostgreSQL; SQLite's version 6): each attempt's result, its outcome as the deliverer classified it
-- (AttemptOutcome's names: success, http_status, redirect_not_followed, timeout,
-- connect_refused, blocked, tls_error, other). Older rows get the result their status and
-- error imply.
ALTER TABLE deliveries ADD COLUMN result TEXT NOT NULL DEFAULT 'other';
UPDATE deliveries SET result = CASE
    WHEN error IS NULL AND response_status BETWEEN 200 AND 299 THEN 'success'
    WHEN response_status BETWEEN 300 AND 399 THEN 'redirect_not_followed'
    WHEN response_status IS NOT NULL THEN 'http_status'
    WHEN error LIKE 'timed out%' THEN 'timeout'
    WHEN error LIKE 'connection refused%' THEN 'connect_refused'
    WHEN error LIKE 'refused to connect%' THEN 'blocked'
    WHEN error LIKE 'tls error%' THEN 'tls_error'
    ELSE 'other'
END;
