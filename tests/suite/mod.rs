//! One module per area of behaviour; each test drives the real `codex-lite` binary.

mod apply_patch;
mod auth;
mod catalog_requests;
mod cli;
mod commands;
mod mock_selftest;
mod rpc;
mod sandbox;
mod threads;
mod turns;
