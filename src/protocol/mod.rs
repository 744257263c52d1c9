//! Typed params, results and notifications of the methods in scope (protocol.md), in the wire's
//! camelCase. Shapes follow `app-server-protocol-0.169.0.schema.json`; look a type up there by
//! its title before changing it. Behaviour lives elsewhere: this module only describes messages.
//!
//! By area: `initialize` (the handshake), `threads` (threads, turns, their status, errors and
//! token usage), `items` (user input and the items of a turn), `notify` (borrowed notification
//! params). Every type is re-exported here, so paths read `protocol::Thread`.

mod initialize;
mod items;
pub mod notify;
mod threads;

pub use initialize::{
    ClientInfo, InitializeCapabilities, InitializeParams, InitializeResponse, ServerInfo,
};
pub use items::{
    CommandSource, FileUpdateChange, ItemStatus, McpToolCallError, PatchChangeKind, ThreadItem,
    UserInput,
};
pub use threads::{
    ActiveFlag, CodexErrorInfo, Thread, ThreadStatus, ThreadTokenUsage, TokenUsage, Turn,
    TurnError, TurnStatus,
};

/// Method names the server answers or sends.
pub mod method {
    /// Client → server: the handshake request.
    pub const INITIALIZE: &str = "initialize";
    /// Client → server: the handshake's closing notification.
    pub const INITIALIZED: &str = "initialized";
}
