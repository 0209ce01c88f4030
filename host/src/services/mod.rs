//! The rules of the product, as Magento's public service interfaces state them.
//!
//! Routes and CLI commands both call these services; services call the [`crate::store`] and
//! never speak HTTP. Each submodule owns one family: accounts (admin users and customers),
//! integrations, and OAuth (consumers, tokens, the handshake).

pub mod accounts;
pub mod integration;
pub mod oauth;
