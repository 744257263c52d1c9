//! MCP clients (mcp.md): the `mcp_servers` configuration, a synchronous client of the Model
//! Context Protocol (revision 2025-06-18) over stdio and streamable HTTP, the registry of the
//! process's servers with their status, and the server methods `mcpServerStatus/list` and
//! `config/mcpServer/reload`. Running a tool call inside a turn (items, approvals, output for
//! the model) is `tools/mcp.rs`'s.
//!
//! Files: `config.rs` (parsing, validation), `client.rs` (one connection: requests, answers,
//! handshake, tool listing, cancellation), `server_requests.rs` (ping, roots, elicitation
//! relay), `stdio/` and `http.rs` (transports), `slot.rs` (one server's lifecycle, restart),
//! `registry.rs` (all servers, the tool catalog, reload, shutdown), `names.rs` (model-facing
//! tool names), `methods.rs` (the protocol methods).
//!
//! Threads: a running server has no thread of its own. On Unix one thread, `mcp-stdio`, reads
//! every stdio server (elsewhere each has a reader thread); an idle HTTP server needs none.
//! Each start runs on a short-lived `mcp-<name>`; each HTTP POST (`mcp-<name>-post`) and each
//! relayed elicitation (`mcp-elicit-<name>`) get a short-lived thread.

pub mod client;
pub mod config;
mod http;
mod methods;
pub mod names;
pub mod registry;
mod server_requests;
mod slot;
mod starter;
mod stdio;

pub use registry::{OfferedTool, Registry};
