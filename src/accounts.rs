//! The account/* methods and `getAuthStatus` (auth.md §2–3).

use serde_json::Value;

use crate::rpc::RequestId;
use crate::server::Server;

impl Server {
    /// Dispatches account methods; `false` for methods not handled here.
    pub fn handle_account_request(
        &mut self,
        _id: &RequestId,
        _method: &str,
        _params: Option<Value>,
    ) -> bool {
        false
    }
}
