-- Searching and paging integrations in the database (GET /rest/V1/integrations with Magento's
-- searchCriteria). A LIKE with a literal prefix is bounded to a byte range of lower(name) or
-- lower(email), compared in the "C" collation: these indexes serve it.
CREATE INDEX integration_name_bytes ON integration ((lower(name) COLLATE "C"));
CREATE INDEX integration_email_bytes ON integration ((lower(email) COLLATE "C"));
CREATE INDEX integration_created ON integration (created_at);
CREATE INDEX integration_updated ON integration (updated_at);
CREATE INDEX integration_status ON integration (status);
