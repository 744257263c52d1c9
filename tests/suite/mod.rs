//! One module per area of behaviour; each test drives the real `codex-lite` binary.

mod apply_patch;
mod auth;
mod catalog_fetch;
mod catalog_requests;
mod cli;
mod cli_demo;
mod cli_embedding_doc;
mod cli_exec;
mod cli_exec_policy;
mod commands;
mod compaction;
mod compaction_catalog;
mod compaction_remote;
mod context;
mod context_review;
mod fuzz_rpc;
mod history;
mod history_running;
// Hands the server a descriptor the Unix way.
#[cfg(unix)]
mod inherited_fds;
mod lifecycle;
mod mcp;
mod mcp_faults;
mod mcp_http;
mod mcp_http_answers;
mod mcp_http_faults;
mod mcp_http_streams;
// Counts the app-server's threads through /proc.
#[cfg(target_os = "linux")]
mod mcp_idle;
mod mock_selftest;
mod patch_scope;
mod redteam;
mod redteam_fs;
mod redteam_proc;
mod rollout_interop;
mod rpc;
mod sandbox;
mod sandbox_server;
mod sandbox_work;
mod thread_provenance;
mod threads;
mod tools_context;
mod turns;
mod unified_exec;
// Checks processes through /proc and the Linux sandbox's PID namespaces.
#[cfg(target_os = "linux")]
mod unified_exec_lifecycle;
mod unified_exec_tty;
