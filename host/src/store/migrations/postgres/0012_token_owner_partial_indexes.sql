-- A token belongs to one of an integration (consumer_id), an admin (admin_id) or a customer
-- (customer_id); the other two columns are NULL. Indexing those NULLs made every insert and
-- every delete of a token change two index entries no query reads (on SQLite the cleanup jobs
-- deleting a million expired handshake tokens spent 34 s of CPU instead of 24 s). The
-- queries these indexes serve (`admin_id = ?`, the cascades from the owner's row) name a value,
-- which a partial index `WHERE ... IS NOT NULL` answers.
DROP INDEX oauth_token_consumer;
DROP INDEX oauth_token_admin;
DROP INDEX oauth_token_customer;
CREATE INDEX oauth_token_consumer ON oauth_token (consumer_id) WHERE consumer_id IS NOT NULL;
CREATE INDEX oauth_token_admin ON oauth_token (admin_id) WHERE admin_id IS NOT NULL;
CREATE INDEX oauth_token_customer ON oauth_token (customer_id) WHERE customer_id IS NOT NULL;
