-- Plugins' key-value state (the key_value capability), one namespace per plugin id. `size` is
-- the bytes of the key and the value, summed against the plugin's quota.
CREATE TABLE plugin_kv (
    plugin_id  TEXT    NOT NULL,
    item_key   TEXT    NOT NULL,
    value      BLOB    NOT NULL,
    size       INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (plugin_id, item_key)
);
