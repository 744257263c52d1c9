//! Front ends other than the app-server itself: `exec` (the one-shot command line the
//! TypeScript SDK drives) and `demo` (the offline tour, which is also the reference example of
//! an embedding app).
//!
//! Neither runs a turn of its own. Both spawn our own binary as `app-server` and talk to it
//! over its stdio with [`client::AppServerChild`], exactly as an embedding app does, so there
//! is one engine (the server core: threads, turns, tools, approvals, auth) and these are thin
//! clients of its public protocol. Why a child process rather than an in-process client over
//! channels: the server owns process-wide things (stdout, signal and shutdown behaviour, the
//! sandbox helper's re-exec) that a child keeps exactly as they are in production; the front
//! ends exercise the very protocol embedders depend on; and the cost is one extra process
//! (about 4 MB and a few milliseconds to start).

pub mod client;
pub mod demo;
mod demo_model;
pub mod exec;
mod exec_args;
mod exec_events;
mod render;
