-- Nonces as a log in arrival order (SQLite only). Keyed by (consumer, nonce), every nonce a
-- client sends (random by nature) landed on its own page of the key: one page written per
-- signed request, whatever the group commit. Appended in `seq` order, a commit of many nonces
-- writes a few pages. Whether a nonce is new is decided by the nonce writer, from this log,
-- under the database's write lock, so it holds across server processes (see store/nonces.rs).
-- AUTOINCREMENT: a sequence number is never reused, even after the newest rows are deleted,
-- which is how each process reads exactly the rows the others appended since it last looked.
CREATE TABLE oauth_nonce_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    nonce       TEXT    NOT NULL,
    timestamp   INTEGER NOT NULL,
    consumer_id INTEGER NOT NULL REFERENCES oauth_consumer (id) ON DELETE CASCADE
);
INSERT INTO oauth_nonce_log (nonce, timestamp, consumer_id)
    SELECT nonce, timestamp, consumer_id FROM oauth_nonce ORDER BY timestamp;
DROP TABLE oauth_nonce;
ALTER TABLE oauth_nonce_log RENAME TO oauth_nonce;
-- The cleanup and the start-up read go by timestamp; a consumer's deletion cascades by consumer.
CREATE INDEX oauth_nonce_timestamp ON oauth_nonce (timestamp);
CREATE INDEX oauth_nonce_consumer ON oauth_nonce (consumer_id);
