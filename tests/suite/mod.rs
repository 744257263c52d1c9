//! One module per area of behaviour; each test drives the real `codex-lite` binary.

mod apply_patch;
mod auth;
mod cli;
mod commands;
mod mock_selftest;
mod rollout_interop;
mod rpc;
mod sandbox;
mod threads;
mod turns;
