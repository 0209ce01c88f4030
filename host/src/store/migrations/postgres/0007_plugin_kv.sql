-- Plugins' key-value state (the key_value capability), one namespace per plugin id. `size` is
-- the bytes of the key and the value, summed against the plugin's quota.
CREATE TABLE plugin_kv (
    plugin_id  TEXT    NOT NULL,
    item_key   TEXT    NOT NULL,
    value      BYTEA   NOT NULL,
    size       BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (plugin_id, item_key)
);
