//! The support library by concern; `lib.rs` re-exports all of it.

pub mod app;
pub mod db;
pub mod docs;
pub mod oauth;
pub mod plugins;
pub mod process;
pub mod servers;

pub use app::*;
pub use db::*;
pub use docs::*;
pub use oauth::*;
pub use plugins::*;
pub use process::*;
pub use servers::*;
