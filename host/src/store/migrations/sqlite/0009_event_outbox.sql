-- The durable outbox of events for async observers. An event is written in the transaction of
-- the change it reports; `id` orders events in commit order (SQLite has one writer at a time).
CREATE TABLE event_outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id   TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- How far each async observer's deliveries were created from the outbox, and when a server
-- last did so (an observer no server has had for the retention period is forgotten).
CREATE TABLE event_cursor (
    observer       TEXT    PRIMARY KEY,
    last_outbox_id INTEGER NOT NULL,
    seen_at        INTEGER NOT NULL
);

-- One event for one observer, until it is delivered (then deleted) or given up. Times in
-- milliseconds since the Unix epoch; a server holds a delivery it works on until leased_until.
CREATE TABLE event_delivery (
    observer        TEXT    NOT NULL,
    outbox_id       INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    leased_until    INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    given_up_at     INTEGER,
    PRIMARY KEY (observer, outbox_id)
);
CREATE INDEX event_delivery_due ON event_delivery (observer, next_attempt_at) WHERE given_up_at IS NULL;
CREATE INDEX event_delivery_event ON event_delivery (outbox_id);
