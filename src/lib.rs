//! The codex-lite crate as a library: the whole module tree, so that the binary (`main.rs`, argv
//! dispatch only), the fuzz targets (`fuzz/`) and the examples share one build of it. It is not a
//! published API: items are `pub` so those in-repo users can reach them, nothing more.

pub mod accounts;
pub mod apply_patch;
pub mod auth;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod context;
pub mod exec;
pub mod fuzzing;
pub mod ids;
pub mod lifecycle;
pub mod log;
pub mod login;
pub mod mcp;
pub mod models;
pub mod platform;
pub mod prompt;
pub mod protocol;
pub mod review;
pub mod rollout;
pub mod rpc;
pub mod sandbox;
pub mod secret;
pub mod server;
#[cfg(test)]
mod test_dir;
pub mod thread;
pub mod threads;
pub mod time;
pub mod tools;
pub mod turn;
