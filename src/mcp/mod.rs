//! MCP clients (mcp.md): the `mcp_servers` configuration, a synchronous client of the Model
//! Context Protocol (revision 2025-06-18) over stdio and streamable HTTP, the registry of the
//! process's servers with their status, and the server methods `mcpServerStatus/list` and
//! `config/mcpServer/reload`. Running a tool call inside a turn (items, approvals, output for
//! the model) is `tools/mcp.rs`'s.
//!
//! Files: `config.rs` (parsing, validation), `client.rs` (one connection: requests, answers,
//! cancellation; `client/incoming.rs` routes what the server sends), `starter.rs` (handshake
//! and tool listing of every start), `server_requests.rs` (ping, roots, elicitation relay),
//! `stdio/` and `http.rs` (transports), `slot.rs` (one server's lifecycle, restart),
//! `registry.rs` (all servers, the tool catalog, reload, shutdown), `names.rs` (model-facing
//! tool names), `methods.rs` (the protocol methods).
//!
//! Threads: a server has no thread of its own. On Unix one thread, `mcp-stdio`, reads every
//! stdio server (elsewhere each has a reader thread); one, `mcp-http`, drives every exchange of
//! every HTTP server, event streams included; one, `mcp-start`, runs the starts in progress.
//! Each exists only while it has work. A relayed elicitation (`mcp-elicit-<name>`) and the end
//! of a stdio server (`mcp-<name>-end`) get a short-lived thread.

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
