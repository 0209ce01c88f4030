//! The rules of the product, as Magento's public service interfaces state them.
//!
//! Routes and CLI commands both call these services; services call the [`crate::store`] and
//! never speak HTTP. Each submodule owns one family: accounts (admin users and customers).

pub mod accounts;
