-- Every server process keeps credentials, permissions and integrations in caches. A change to
-- any of them, by any process, the CLI or SQL typed by hand, is announced on the channel
-- `integration_host_changes` when its transaction commits (NOTIFY is transactional), and every
-- server process listening there starts its caches over (store/watch.rs). The payload names the
-- table; identical notices of one transaction are delivered once.
CREATE FUNCTION integration_host_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('integration_host_changes', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER integration_host_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON integration FOR EACH STATEMENT EXECUTE FUNCTION integration_host_notify_change();
CREATE TRIGGER integration_host_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON oauth_consumer FOR EACH STATEMENT EXECUTE FUNCTION integration_host_notify_change();
CREATE TRIGGER integration_host_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON oauth_token FOR EACH STATEMENT EXECUTE FUNCTION integration_host_notify_change();
CREATE TRIGGER integration_host_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON authorization_role FOR EACH STATEMENT EXECUTE FUNCTION integration_host_notify_change();
CREATE TRIGGER integration_host_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON authorization_rule FOR EACH STATEMENT EXECUTE FUNCTION integration_host_notify_change();
CREATE TRIGGER integration_host_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON admin_user FOR EACH STATEMENT EXECUTE FUNCTION integration_host_notify_change();
CREATE TRIGGER integration_host_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON customer FOR EACH STATEMENT EXECUTE FUNCTION integration_host_notify_change();
CREATE TRIGGER integration_host_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON jwt_auth_revoked FOR EACH STATEMENT EXECUTE FUNCTION integration_host_notify_change();
