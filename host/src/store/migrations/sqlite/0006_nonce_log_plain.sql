-- The nonce log without what each appended row paid for and nothing needed: AUTOINCREMENT
-- (a write to sqlite_sequence per row) and the foreign key's index on consumer_id (a third
-- B-tree per row). Together they were more than half of the nonce writer's time.
--
-- `seq` is still never reused: SQLite gives a new row the largest `seq` plus one, and nothing
-- deletes the newest row (the cleanup keeps it, see store/tokens.rs), so every process still
-- reads exactly the rows the others appended since it last looked. A writer that finds the
-- log's largest `seq` below the last one it read (the file was replaced, or the rows deleted
-- by hand) reads the log afresh.
--
-- Without the foreign key, deleting a consumer leaves its nonces to the nonce cleanup, which
-- deletes them once they are out of the window like every other; a consumer id is never
-- reused (AUTOINCREMENT on oauth_consumer), and the writer checks the consumer exists before
-- appending.
CREATE TABLE oauth_nonce_log (
    seq         INTEGER PRIMARY KEY,
    nonce       TEXT    NOT NULL,
    timestamp   INTEGER NOT NULL,
    consumer_id INTEGER NOT NULL
);
INSERT INTO oauth_nonce_log (seq, nonce, timestamp, consumer_id)
    SELECT seq, nonce, timestamp, consumer_id FROM oauth_nonce ORDER BY seq;
DROP TABLE oauth_nonce;
ALTER TABLE oauth_nonce_log RENAME TO oauth_nonce;
CREATE INDEX oauth_nonce_timestamp ON oauth_nonce (timestamp);
