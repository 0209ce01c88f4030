-- Searching and paging integrations in the database (GET /rest/V1/integrations with Magento's
-- searchCriteria). integration_name (lower(name)) already serves name filters, LIKE prefixes
-- bounded to its byte range, and the sort by name.
CREATE INDEX integration_email ON integration (lower(email));
CREATE INDEX integration_created ON integration (created_at);
CREATE INDEX integration_updated ON integration (updated_at);
CREATE INDEX integration_status ON integration (status);
