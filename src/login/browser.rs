//! The browser login (auth.md §3.2): PKCE S256 codes and `state`, the authorize URL, binding
//! the callback port, and the [`BrowserLogin`] handle. The server that receives the browser's
//! redirect is `callback.rs`.
//!
//! Does not own: opening a browser (the client app does), persisting the result.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use crossbeam_channel::Receiver;
use sha2::{Digest, Sha256};

use super::callback::{Flow, serve};
use super::{Completion, LOGIN_CANCELED, LoginCallback, LoginOptions, oauth};
use crate::ids;
use crate::log;
use crate::secret::Secret;

/// How long a browser login waits for its callback (auth.md §3.2).
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The callback port the issuer knows Codex by.
pub const DEFAULT_CALLBACK_PORT: u16 = 1455;
/// The second port on the issuer's redirect-URI allow-list (as the reference falls back to),
/// tried when the default one is busy, before any free port.
pub const FALLBACK_CALLBACK_PORT: u16 = 1457;
/// The scopes asked for.
const SCOPE: &str = "openid profile email offline_access";
/// How long `cancel` waits for the server thread to close the listener.
const CANCEL_WAIT: Duration = Duration::from_secs(2);

/// A pending browser login. The client opens `auth_url`; the outcome arrives through the
/// login's callback. Dropping the handle does not cancel the login (it ends at the timeout).
pub struct BrowserLogin {
    /// Identifies the login in `account/login/completed` and `account/login/cancel` (UUID v7).
    pub login_id: String,
    /// The issuer's authorize URL for the user's browser.
    pub auth_url: String,
    /// The port the callback server actually listens on (the configured one, or a fallback).
    pub callback_port: u16,
    flow: Arc<Flow>,
    closed: Receiver<()>,
}

impl BrowserLogin {
    /// Ends the login: closes the callback server (waiting up to 2 s for the port to be
    /// released) and, unless the login already ended, reports `Err("login canceled")`, on the
    /// calling thread. Idempotent; after a success it only stops serving the success page.
    /// True when this call ended the login (`account/login/cancel` → `canceled`), false when
    /// it had already ended (→ `notFound`).
    pub fn cancel(&self) -> bool {
        self.flow.stop_server();
        let _ = self.closed.recv_timeout(CANCEL_WAIT);
        let canceled = self.flow.completion.finish(Err(LOGIN_CANCELED.to_string()));
        if canceled {
            log::info(&format!("login {}: canceled", self.login_id));
        }
        canceled
    }
}

/// Starts a browser login: binds the callback server on 127.0.0.1 (the configured port; when
/// it is busy, 1457 if the configured one is the default 1455, then any free port — the
/// redirect URI names the port actually bound), builds the authorize URL, and serves callbacks
/// on the `login-callback` thread for up to 10 minutes. `on_done` is called exactly once,
/// unless this returns `Err` (then never).
pub fn start_browser_login(
    opts: LoginOptions,
    on_done: LoginCallback,
) -> anyhow::Result<BrowserLogin> {
    start(opts, on_done, LOGIN_TIMEOUT)
}

/// [`start_browser_login`] with another timeout (tests).
pub(super) fn start(
    opts: LoginOptions,
    on_done: LoginCallback,
    timeout: Duration,
) -> anyhow::Result<BrowserLogin> {
    let listener = bind_callback(opts.callback_port)?;
    let port = listener
        .local_addr()
        .context("reading the callback server's address")?
        .port();
    listener
        .set_nonblocking(true)
        .context("configuring the callback server")?;
    let (waker, wake_rx) =
        crate::platform::wake_pair().context("creating the login wake-up socket")?;
    let code_verifier = Secret::new(ids::random_token(64));
    let state = Secret::new(ids::random_token(32));
    let redirect_uri = format!("http://localhost:{port}/auth/callback");
    let auth_url = authorize_url(
        &opts,
        &redirect_uri,
        &code_challenge(code_verifier.expose()),
        state.expose(),
    );
    let login_id = ids::uuid_v7();
    let flow = Arc::new(Flow {
        login_id: login_id.clone(),
        opts,
        state,
        code_verifier,
        redirect_uri,
        success_url: format!("http://localhost:{port}/success"),
        completion: Completion::new(on_done),
        stop: AtomicBool::new(false),
        succeeded: AtomicBool::new(false),
        claimed: AtomicBool::new(false),
        waker,
    });
    let (closed_tx, closed) = crossbeam_channel::bounded(0);
    let deadline = Instant::now() + timeout;
    let server_flow = flow.clone();
    std::thread::Builder::new()
        .name("login-callback".into())
        .spawn(move || serve(server_flow, listener, wake_rx, closed_tx, deadline))
        .context("starting the login callback server thread")?;
    log::info(&format!(
        "login {login_id}: waiting for the browser on 127.0.0.1:{port}"
    ));
    Ok(BrowserLogin {
        login_id,
        auth_url,
        callback_port: port,
        flow,
        closed,
    })
}

/// Binds 127.0.0.1:`port`, falling back as [`start_browser_login`] says when it is in use.
fn bind_callback(port: u16) -> anyhow::Result<TcpListener> {
    let bind = |port: u16| TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    let mut candidates = vec![port];
    if port == DEFAULT_CALLBACK_PORT {
        candidates.push(FALLBACK_CALLBACK_PORT);
    }
    if port != 0 {
        candidates.push(0);
    }
    let mut last_busy = None;
    for candidate in candidates {
        match bind(candidate) {
            Ok(listener) => {
                if let Some(busy) = last_busy {
                    log::warn(&format!(
                        "login callback port {busy} is in use; listening on {} instead",
                        listener.local_addr().map(|a| a.port()).unwrap_or(candidate)
                    ));
                }
                return Ok(listener);
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && candidate != 0 => {
                last_busy.get_or_insert(candidate);
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("binding 127.0.0.1:{candidate} for the login callback")
                });
            }
        }
    }
    anyhow::bail!("no port for the login callback server")
}

/// The PKCE S256 challenge of `verifier`: base64url (no padding) of its SHA-256.
pub(super) fn code_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `<issuer>/oauth/authorize?…` with the parameters of auth.md §3.2, in its order. Forced
/// workspaces add `allowed_workspace_id`: the id, or several joined with commas (as the
/// reference does; the issuer then offers only those workspaces).
fn authorize_url(opts: &LoginOptions, redirect_uri: &str, challenge: &str, state: &str) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", oauth::CLIENT_ID),
        ("redirect_uri", redirect_uri),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("state", state),
        ("scope", SCOPE),
        ("id_token_add_organizations", "true"),
        ("codex_cli_simplified_flow", "true"),
        ("originator", opts.originator.as_str()),
    ];
    let workspaces = opts.forced().map(|ids| ids.join(","));
    if let Some(workspaces) = &workspaces {
        params.push(("allowed_workspace_id", workspaces));
    }
    format!(
        "{}?{}",
        oauth::endpoint(&opts.issuer, "/oauth/authorize"),
        super::http::encode_pairs(&params)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let verifier = ids::random_token(64);
        assert!((43..=128).contains(&verifier.len()));
        assert_eq!(code_challenge(&verifier).len(), 43);
    }

    fn opts(forced: Option<Vec<&str>>) -> LoginOptions {
        LoginOptions {
            issuer: "https://auth.openai.com/".into(),
            callback_port: 1455,
            originator: "codex vscode".into(),
            forced_workspace_ids: forced.map(|ids| ids.into_iter().map(String::from).collect()),
        }
    }

    #[test]
    fn authorize_url_content() {
        let url = authorize_url(
            &opts(None),
            "http://localhost:1455/auth/callback",
            "CHAL",
            "ST-1",
        );
        assert_eq!(
            url,
            "https://auth.openai.com/oauth/authorize?response_type=code\
             &client_id=app_EMoamEEZ73f0CkXaXp7hrann\
             &redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback\
             &code_challenge=CHAL&code_challenge_method=S256&state=ST-1\
             &scope=openid%20profile%20email%20offline_access\
             &id_token_add_organizations=true&codex_cli_simplified_flow=true\
             &originator=codex%20vscode"
        );
        for (forced, suffix) in [
            (Some(vec!["org-1"]), Some("&allowed_workspace_id=org-1")),
            (
                Some(vec!["org-1", "org-2"]),
                Some("&allowed_workspace_id=org-1%2Corg-2"),
            ),
            (Some(vec![]), None),
            (None, None),
        ] {
            let url = authorize_url(&opts(forced), "r", "c", "s");
            match suffix {
                Some(suffix) => assert!(url.ends_with(suffix), "{url}"),
                None => assert!(!url.contains("allowed_workspace_id"), "{url}"),
            }
        }
    }

    #[test]
    fn busy_port_falls_back_to_a_free_one() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = taken.local_addr().unwrap().port();
        let listener = bind_callback(busy).unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_ne!(port, busy);
        assert_ne!(port, 0);
        let any = bind_callback(0).unwrap();
        assert_ne!(any.local_addr().unwrap().port(), 0);
    }
}
