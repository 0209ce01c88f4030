//! Test support: the real server on port 0 with a fresh database per test, and the built binary.
//!
//! The backend comes from the environment: with `TEST_DATABASE_URL` set to a PostgreSQL URL
//! (an account allowed to create databases), every test gets a database of its own on that
//! server; without it, every test gets an SQLite file in a temporary folder. The test script
//! runs the whole suite once each way.

pub mod browser;
mod support;

pub use support::*;
