-- Sessions of the admin UI. The session id is a random secret kept in the admin's cookie; the
-- database holds only its keyed hash. Deleted at sign-out, when the admin's tokens are revoked
-- (force sign-in, disable, delete), and by the expired-tokens cleanup once expired.
CREATE TABLE admin_session (
    id_hash    TEXT    PRIMARY KEY,
    admin_id   BIGINT  NOT NULL REFERENCES admin_user (id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX admin_session_admin ON admin_session (admin_id);
CREATE INDEX admin_session_expires ON admin_session (expires_at);
