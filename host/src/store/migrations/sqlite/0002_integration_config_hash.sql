-- Fingerprint of a config integration's definition (name, email, URLs, resources), so that a
-- sync can tell an unchanged definition from a changed one. Empty for manual integrations.
ALTER TABLE integration ADD COLUMN config_hash TEXT NOT NULL DEFAULT '';
