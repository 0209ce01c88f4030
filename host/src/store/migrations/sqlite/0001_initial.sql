-- Initial schema (SQLite). Timestamps are UTC unix seconds. Secrets are sealed BLOBs.

CREATE TABLE admin_user (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    firstname     TEXT    NOT NULL DEFAULT '',
    lastname      TEXT    NOT NULL DEFAULT '',
    password_hash TEXT    NOT NULL,
    is_active     INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX admin_user_username ON admin_user (lower(username));

CREATE TABLE customer (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL,
    firstname     TEXT    NOT NULL DEFAULT '',
    lastname      TEXT    NOT NULL DEFAULT '',
    password_hash TEXT    NOT NULL,
    is_active     INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX customer_email ON customer (lower(email));

CREATE TABLE oauth_consumer (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    name                  TEXT    NOT NULL,
    "key"                 TEXT    NOT NULL UNIQUE,
    secret                BLOB    NOT NULL,
    callback_url          TEXT,
    rejected_callback_url TEXT    NOT NULL DEFAULT '',
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);

CREATE TABLE oauth_token (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer_id  INTEGER REFERENCES oauth_consumer (id) ON DELETE CASCADE,
    admin_id     INTEGER REFERENCES admin_user (id) ON DELETE CASCADE,
    customer_id  INTEGER REFERENCES customer (id) ON DELETE CASCADE,
    type         TEXT    NOT NULL CHECK (type IN ('verifier', 'request', 'access')),
    token_hash   BLOB    NOT NULL UNIQUE,
    token        BLOB    NOT NULL,
    secret       BLOB    NOT NULL,
    verifier     BLOB,
    callback_url TEXT    NOT NULL DEFAULT '',
    revoked      INTEGER NOT NULL DEFAULT 0,
    authorized   INTEGER NOT NULL DEFAULT 0,
    user_type    INTEGER,
    created_at   INTEGER NOT NULL
);
CREATE INDEX oauth_token_consumer ON oauth_token (consumer_id);
CREATE INDEX oauth_token_admin ON oauth_token (admin_id);
CREATE INDEX oauth_token_customer ON oauth_token (customer_id);
CREATE INDEX oauth_token_created ON oauth_token (created_at);

CREATE TABLE oauth_nonce (
    nonce       TEXT    NOT NULL,
    timestamp   INTEGER NOT NULL,
    consumer_id INTEGER NOT NULL REFERENCES oauth_consumer (id) ON DELETE CASCADE,
    PRIMARY KEY (consumer_id, nonce)
) WITHOUT ROWID;
CREATE INDEX oauth_nonce_timestamp ON oauth_nonce (timestamp);

CREATE TABLE integration (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT    NOT NULL,
    email             TEXT    NOT NULL DEFAULT '',
    endpoint          TEXT    NOT NULL DEFAULT '',
    identity_link_url TEXT    NOT NULL DEFAULT '',
    status            INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1, 2)),
    consumer_id       INTEGER UNIQUE REFERENCES oauth_consumer (id) ON DELETE CASCADE,
    setup_type        INTEGER NOT NULL DEFAULT 0 CHECK (setup_type IN (0, 1)),
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE UNIQUE INDEX integration_name ON integration (lower(name));

CREATE TABLE oauth_token_request_log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_name       TEXT    NOT NULL,
    user_type       INTEGER NOT NULL,
    failures_count  INTEGER NOT NULL DEFAULT 0,
    lock_expires_at INTEGER,
    UNIQUE (user_name, user_type)
);
CREATE INDEX oauth_token_request_log_lock ON oauth_token_request_log (lock_expires_at);

CREATE TABLE jwt_auth_revoked (
    user_type     INTEGER NOT NULL,
    user_id       INTEGER NOT NULL,
    revoke_before INTEGER NOT NULL,
    PRIMARY KEY (user_type, user_id)
);

-- ACL roles as Magento keeps them: group roles ('G') hold rules; user roles ('U') tie an admin
-- (user_type 2) to a group, or hold an integration's own rules (user_type 1).
CREATE TABLE authorization_role (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id  INTEGER REFERENCES authorization_role (id) ON DELETE CASCADE,
    role_type  TEXT    NOT NULL CHECK (role_type IN ('G', 'U')),
    user_id    INTEGER,
    user_type  INTEGER,
    role_name  TEXT    NOT NULL
);
CREATE UNIQUE INDEX authorization_role_user ON authorization_role (user_type, user_id);

CREATE TABLE authorization_rule (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    role_id     INTEGER NOT NULL REFERENCES authorization_role (id) ON DELETE CASCADE,
    resource_id TEXT    NOT NULL,
    permission  TEXT    NOT NULL CHECK (permission IN ('allow', 'deny')),
    UNIQUE (role_id, resource_id)
);

INSERT INTO authorization_role (parent_id, role_type, user_id, user_type, role_name)
VALUES (NULL, 'G', NULL, NULL, 'Administrators');
INSERT INTO authorization_rule (role_id, resource_id, permission)
VALUES ((SELECT id FROM authorization_role WHERE role_name = 'Administrators' AND role_type = 'G'),
        'Magento_Backend::all', 'allow');
