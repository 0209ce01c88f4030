//! integration-host: a server that lets third-party services call a Web API with access tokens,
//! compatible with Magento 2's Integration module where an integrator's client would notice.
//!
//! The crate is organised in rooms whose imports point one way (`docs/architecture.md`, checked
//! by the `architecture` unit test): [`domain`], [`clock`] and [`config`] are the floor;
//! [`crypto`] keeps secrets, [`acl`] knows the resource tree, [`store`] holds all SQL,
//! [`services`] hold the rules, [`plugins`] runs WebAssembly, [`web`] translates HTTP,
//! [`startup`] assembles and runs the server, and [`cli`] is the command line.

pub mod acl;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod declarative;
pub mod domain;
pub mod events;
pub mod fuzzing;
pub mod jobs;
pub mod oauth;
pub mod plugins;
pub mod services;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;
pub mod webapi;

#[cfg(test)]
mod architecture;
