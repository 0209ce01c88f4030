-- Other processes' writes reach a server's caches through `PRAGMA data_version`, which moves
-- with every commit, the nonce log's and the cleanup jobs' included: under load several times a
-- second. The caches read only the tables below (those PostgreSQL's notify triggers announce,
-- migration 0005 there): a change to any of them moves `cache_epoch.n` in the same transaction,
-- and a server starts its caches over only when it moved (store/watch.rs).
CREATE TABLE cache_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO cache_epoch (id, n) VALUES (1, 0);

CREATE TRIGGER integration_cache_epoch_insert AFTER INSERT ON integration
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER integration_cache_epoch_update AFTER UPDATE ON integration
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER integration_cache_epoch_delete AFTER DELETE ON integration
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER oauth_consumer_cache_epoch_insert AFTER INSERT ON oauth_consumer
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER oauth_consumer_cache_epoch_update AFTER UPDATE ON oauth_consumer
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER oauth_consumer_cache_epoch_delete AFTER DELETE ON oauth_consumer
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER oauth_token_cache_epoch_insert AFTER INSERT ON oauth_token
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER oauth_token_cache_epoch_update AFTER UPDATE ON oauth_token
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER oauth_token_cache_epoch_delete AFTER DELETE ON oauth_token
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER authorization_role_cache_epoch_insert AFTER INSERT ON authorization_role
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER authorization_role_cache_epoch_update AFTER UPDATE ON authorization_role
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER authorization_role_cache_epoch_delete AFTER DELETE ON authorization_role
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER authorization_rule_cache_epoch_insert AFTER INSERT ON authorization_rule
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER authorization_rule_cache_epoch_update AFTER UPDATE ON authorization_rule
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER authorization_rule_cache_epoch_delete AFTER DELETE ON authorization_rule
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER admin_user_cache_epoch_insert AFTER INSERT ON admin_user
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER admin_user_cache_epoch_update AFTER UPDATE ON admin_user
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER admin_user_cache_epoch_delete AFTER DELETE ON admin_user
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER customer_cache_epoch_insert AFTER INSERT ON customer
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER customer_cache_epoch_update AFTER UPDATE ON customer
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER customer_cache_epoch_delete AFTER DELETE ON customer
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER jwt_auth_revoked_cache_epoch_insert AFTER INSERT ON jwt_auth_revoked
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER jwt_auth_revoked_cache_epoch_update AFTER UPDATE ON jwt_auth_revoked
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER jwt_auth_revoked_cache_epoch_delete AFTER DELETE ON jwt_auth_revoked
BEGIN UPDATE cache_epoch SET n = n + 1 WHERE id = 1; END;
