//! End-to-end tests of integration-host: the real server and the real binary, on SQLite or
//! PostgreSQL (see `tests/lib.rs`).

mod admin_ui;
mod bootstrap;
mod cli;
mod clients;
mod config;
mod declarative;
mod forward_auth;
mod handshake;
mod hardened;
mod health;
mod interceptors;
mod jobs;
mod keys;
mod magento_import;
mod migrations;
mod nodes;
mod operations_doc;
mod outage;
mod outbox;
mod plugin_call;
mod plugin_http;
mod plugin_new;
mod plugin_state;
mod plugins;
mod plugins_doc;
mod plugins_js_py;
mod race;
mod rest;
mod roles;
mod roles_doc;
mod search;
mod shutdown;
mod tokens;
