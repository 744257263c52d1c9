//! Short authenticated JSON requests to the OpenAI/ChatGPT backends outside model round trips:
//! the model catalog, workspace routing (`/wham/accounts/check`) and usage (`/wham/usage`).
//! Same credentials, identity headers, proxy and TLS rules as model requests; one 401 recovery;
//! bounded in time and size. Callers run them on their own threads, never on the main loop.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::{AuthProvider, CredentialKind, Credentials};

/// Longest any of these requests may take, connect included.
pub const GET_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest body read (a catalog with prompts is a few hundred KiB).
const MAX_BODY_BYTES: u64 = 8 * 1024 * 1024;

/// Who is asking: sent as `originator`, `user-agent` and `version` on every request.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// `clientInfo.name` of the connection.
    pub originator: String,
    /// The full user agent.
    pub user_agent: String,
}

/// An answer whatever its status.
#[derive(Debug)]
pub struct GetResponse {
    /// HTTP status.
    pub status: u16,
    /// The `ETag` header, when present.
    pub etag: Option<String>,
    /// The body (at most 8 MiB).
    pub body: Vec<u8>,
}

impl GetResponse {
    /// The body as text for error messages (lossy, at most 200 bytes).
    pub fn snippet(&self) -> String {
        super::error::truncate(&String::from_utf8_lossy(&self.body), 200)
    }
}

/// `GET url` with `credentials`: `Authorization`, `chatgpt-account-id` (ChatGPT), the identity
/// headers, `accept: application/json` and `extra` headers. Transport failures are `Err`
/// with a lowercase message naming the URL.
pub fn get_with(
    url: &str,
    credentials: &Credentials,
    identity: &ClientIdentity,
    extra: &[(&str, &str)],
) -> Result<GetResponse, String> {
    let agent =
        super::net::agent_with_timeout(url, Arc::new(AtomicBool::new(false)), Some(GET_TIMEOUT));
    let mut request = agent
        .get(url)
        .header(
            "authorization",
            format!("Bearer {}", credentials.token.expose()),
        )
        .header("originator", identity.originator.as_str())
        .header("user-agent", identity.user_agent.as_str())
        .header("version", super::CODEX_VERSION)
        .header("accept", "application/json");
    if credentials.kind == CredentialKind::ChatGpt
        && let Some(account) = &credentials.account_id
    {
        request = request.header("chatgpt-account-id", account.as_str());
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request
        .call()
        .map_err(|e| format!("GET {url} failed: {e}"))?;
    let status = response.status().as_u16();
    let etag = super::net::header_text(response.headers(), "etag");
    let mut body = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(MAX_BODY_BYTES)
        .read_to_end(&mut body)
        .map_err(|e| format!("reading the answer of GET {url} failed: {e}"))?;
    Ok(GetResponse { status, etag, body })
}

/// [`get_with`] with the current credentials, recovering once from a 401 like model requests
/// do. `Err` when not logged in or on a transport failure.
pub fn get(
    auth: &dyn AuthProvider,
    url: &str,
    identity: &ClientIdentity,
    extra: &[(&str, &str)],
) -> Result<GetResponse, String> {
    let credentials = auth
        .credentials()
        .map_err(|e| e.message)?
        .ok_or_else(|| "not logged in".to_string())?;
    let response = get_with(url, &credentials, identity, extra)?;
    if response.status != 401 {
        return Ok(response);
    }
    match auth.recover_unauthorized(&credentials) {
        Ok(true) => {
            let credentials = auth
                .credentials()
                .map_err(|e| e.message)?
                .ok_or_else(|| "not logged in".to_string())?;
            get_with(url, &credentials, identity, extra)
        }
        Ok(false) => Ok(response),
        Err(e) => Err(e.message),
    }
}
