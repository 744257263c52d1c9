//! The browser login (auth.md §3.2): PKCE S256 codes and `state`, the authorize URL, and the
//! local callback server on 127.0.0.1 that receives the browser's redirect, exchanges the code
//! and reports through the login's [`LoginCallback`].
//!
//! Threads: `login-callback` waits (poll(2), no busy loop) on the listener and on a wake-up
//! socket until the login ends, is canceled, or times out, then closes the listener; each
//! connection is served on its own short-lived `login-callback-conn` thread, so a browser's
//! idle pre-connection or a slow token exchange never keeps the server from noticing a cancel.
//!
//! Does not own: opening a browser (the client app does), persisting the result.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use crossbeam_channel::{Receiver, Sender};
use sha2::{Digest, Sha256};

use super::http::{
    Response, first, html_escape, parse_pairs, parse_request_line, read_request_head,
};
use super::{
    Completion, LOGIN_CANCELED, LOGIN_TIMED_OUT, LoginCallback, LoginOptions, LoginSuccess,
    complete_login, oauth,
};
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
/// How long the server stays up after a successful login to serve `/success`.
const SUCCESS_PAGE_LINGER: Duration = Duration::from_secs(10);
/// Read and write bound of one callback connection.
const CONNECTION_IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed unanswered.
const MAX_CONNECTIONS: usize = 8;
/// How long `cancel` waits for the server thread to close the listener.
const CANCEL_WAIT: Duration = Duration::from_secs(2);
/// Pause after an unexpected `accept` error (e.g. out of file descriptors), so a listener
/// that stays readable cannot spin the thread.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

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
    pub fn cancel(&self) {
        self.flow.stop_server();
        let _ = self.closed.recv_timeout(CANCEL_WAIT);
        if self.flow.completion.finish(Err(LOGIN_CANCELED.to_string())) {
            log::info(&format!("login {}: canceled", self.login_id));
        }
    }
}

/// What the callback server and its connections share.
struct Flow {
    login_id: String,
    opts: LoginOptions,
    state: Secret,
    code_verifier: Secret,
    redirect_uri: String,
    success_url: String,
    completion: Completion,
    /// Set to close the server (cancel, failure, success page served).
    stop: AtomicBool,
    /// Set once the login succeeded: the server lingers for `/success`.
    succeeded: AtomicBool,
    /// Set by the first callback with the right state: only one exchange per login.
    claimed: AtomicBool,
    /// Write end of the server thread's wake-up socket.
    waker: UnixStream,
}

impl Flow {
    fn stop_server(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
    }

    fn wake(&self) {
        // A full socket already holds a wake-up; nothing else can fail here that matters.
        let _ = (&self.waker).write(&[1]);
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
    let (waker, wake_rx) = UnixStream::pair().context("creating the login wake-up socket")?;
    waker
        .set_nonblocking(true)
        .and_then(|()| wake_rx.set_nonblocking(true))
        .context("configuring the login wake-up socket")?;
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

/// The `login-callback` thread: accepts connections until the login is over, then closes the
/// listener, releases `cancel`, and reports a timeout if that is how it ended.
fn serve(
    flow: Arc<Flow>,
    listener: TcpListener,
    wake_rx: UnixStream,
    closed_tx: Sender<()>,
    deadline: Instant,
) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut linger_until: Option<Instant> = None;
    let mut failure = None;
    loop {
        if flow.stop.load(Ordering::SeqCst) {
            break;
        }
        let now = Instant::now();
        if linger_until.is_none() && flow.succeeded.load(Ordering::SeqCst) {
            linger_until = Some(now + SUCCESS_PAGE_LINGER);
        }
        let limit = linger_until.unwrap_or(deadline);
        if now >= limit {
            if linger_until.is_none() {
                failure = Some(LOGIN_TIMED_OUT.to_string());
            }
            break;
        }
        match wait_readable(&listener, &wake_rx, limit - now) {
            Ok((listener_ready, wake_ready)) => {
                if wake_ready {
                    drain(&wake_rx);
                }
                if listener_ready {
                    accept_all(&flow, &listener, &active);
                }
            }
            Err(e) => {
                failure = Some(format!("login callback server failed: {e}"));
                break;
            }
        }
    }
    flow.stop.store(true, Ordering::SeqCst);
    drop(listener);
    drop(closed_tx);
    if let Some(message) = failure
        && flow.completion.finish(Err(message.clone()))
    {
        log::info(&format!("login {}: {message}", flow.login_id));
    }
}

/// Waits until the listener or the wake-up socket is readable, or `timeout` passes.
fn wait_readable(
    listener: &TcpListener,
    wake_rx: &UnixStream,
    timeout: Duration,
) -> io::Result<(bool, bool)> {
    let mut fds = [
        libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake_rx.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // Round up so the loop never wakes a hair before its limit and polls again with 0.
    let millis = timeout
        .as_nanos()
        .div_ceil(1_000_000)
        .clamp(1, i32::MAX as u128) as i32;
    // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return match err.kind() {
            io::ErrorKind::Interrupted => Ok((false, false)),
            _ => Err(err),
        };
    }
    let ready =
        |fd: &libc::pollfd| fd.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0;
    Ok((ready(&fds[0]), ready(&fds[1])))
}

fn drain(wake_rx: &UnixStream) {
    let mut buf = [0u8; 64];
    while matches!((&*wake_rx).read(&mut buf), Ok(n) if n > 0) {}
}

fn accept_all(flow: &Arc<Flow>, listener: &TcpListener, active: &Arc<AtomicUsize>) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => spawn_connection(flow, stream, active),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                ) => {}
            Err(e) => {
                log::warn(&format!(
                    "login {}: accepting a callback connection: {e}",
                    flow.login_id
                ));
                std::thread::sleep(ACCEPT_ERROR_PAUSE);
                return;
            }
        }
    }
}

/// Decrements the count of served connections when a connection thread ends, however.
struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn spawn_connection(flow: &Arc<Flow>, stream: TcpStream, active: &Arc<AtomicUsize>) {
    if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
        active.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let guard = ActiveGuard(active.clone());
    let flow = flow.clone();
    let spawned = std::thread::Builder::new()
        .name("login-callback-conn".into())
        .spawn(move || {
            let _guard = guard;
            handle_connection(&flow, stream);
        });
    if let Err(e) = spawned {
        log::warn(&format!(
            "login: starting a callback connection thread: {e}"
        ));
    }
}

/// What a connection does after writing its response.
enum After {
    Nothing,
    /// The login succeeded (the flag is already set): report.
    Succeed(LoginCallback, LoginSuccess),
    /// The login failed: close the server, then report.
    Fail(LoginCallback, String),
    /// The success page was served: close the server.
    Stop,
}

fn handle_connection(flow: &Flow, mut stream: TcpStream) {
    // Accepted sockets inherit non-blocking mode on some systems.
    let configured = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(CONNECTION_IO_TIMEOUT)))
        .and_then(|()| stream.set_write_timeout(Some(CONNECTION_IO_TIMEOUT)));
    if configured.is_err() {
        return;
    }
    // A connection that sends nothing (a browser's pre-connection) just times out here.
    let Ok(head) = read_request_head(&mut stream) else {
        return;
    };
    let (response, after) = match parse_request_line(&head) {
        None => (Response::text(400, "Bad Request"), After::Nothing),
        Some(request) if request.method != "GET" => {
            let mut response = Response::text(405, "Method Not Allowed");
            response.headers.push(("Allow".into(), "GET".into()));
            (response, After::Nothing)
        }
        Some(request) => match request.path.as_str() {
            "/auth/callback" => callback(flow, &request.query),
            "/success" if flow.succeeded.load(Ordering::SeqCst) => {
                (Response::html(200, SUCCESS_PAGE), After::Stop)
            }
            _ => (Response::text(404, "Not Found"), After::Nothing),
        },
    };
    // The browser may have gone away; the login's outcome does not depend on it.
    let _ = response.write_to(&mut stream);
    drop(stream);
    match after {
        After::Nothing => {}
        After::Succeed(on_done, success) => {
            log::info(&format!("login {}: succeeded", flow.login_id));
            on_done(Ok(success));
        }
        After::Fail(on_done, message) => {
            log::warn(&format!("login {}: failed: {message}", flow.login_id));
            flow.stop_server();
            on_done(Err(message));
        }
        After::Stop => flow.stop_server(),
    }
}

/// `GET /auth/callback?…`: a wrong or missing `state` is refused with 400 and the login
/// stays pending (anyone on this machine can reach the port); with the right state, an
/// `error` fails the login, a `code` is exchanged and checked.
fn callback(flow: &Flow, query: &str) -> (Response, After) {
    if flow.succeeded.load(Ordering::SeqCst) {
        // A reload of the callback page after success.
        return (Response::redirect(&flow.success_url), After::Nothing);
    }
    if flow.completion.is_done() {
        return (
            error_page(400, "This sign-in is no longer pending."),
            After::Nothing,
        );
    }
    let params = parse_pairs(query);
    let state_ok = first(&params, "state").is_some_and(|s| same_secret(s, flow.state.expose()));
    if !state_ok {
        log::warn(&format!(
            "login {}: callback with a missing or wrong state; still waiting",
            flow.login_id
        ));
        return (Response::text(400, "State mismatch"), After::Nothing);
    }
    if flow.claimed.swap(true, Ordering::SeqCst) {
        return (
            error_page(409, "This sign-in is already being completed."),
            After::Nothing,
        );
    }
    let non_empty = |key: &str| first(&params, key).filter(|v| !v.is_empty());
    let outcome = if let Some(error) = non_empty("error") {
        Err(format!(
            "Sign-in failed: {}",
            non_empty("error_description").unwrap_or(error)
        ))
    } else if let Some(code) = non_empty("code") {
        oauth::exchange_code(
            &flow.opts.issuer,
            code,
            &flow.redirect_uri,
            flow.code_verifier.expose(),
        )
        .map_err(|e| format!("token exchange failed: {e}"))
        .and_then(|tokens| complete_login(&flow.login_id, &flow.opts, tokens))
    } else {
        Err("missing authorization code".to_string())
    };
    let Some(on_done) = flow.completion.take() else {
        // Canceled or timed out during the exchange: the tokens are dropped.
        return (
            error_page(400, "This sign-in is no longer pending."),
            After::Nothing,
        );
    };
    match outcome {
        Ok(success) => {
            // Before the redirect goes out, so the browser's `/success` finds it set.
            flow.succeeded.store(true, Ordering::SeqCst);
            flow.wake();
            (
                Response::redirect(&flow.success_url),
                After::Succeed(on_done, success),
            )
        }
        Err(message) => (error_page(200, &message), After::Fail(on_done, message)),
    }
}

/// Compares the `state` without an early exit on the first differing byte.
fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn error_page(status: u16, message: &str) -> Response {
    Response::html(
        status,
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Codex sign-in</title></head>\
             <body><h1>Sign-in could not be completed</h1><p>{}</p>\
             <p>Return to Codex to try again.</p></body></html>",
            html_escape(message)
        ),
    )
}

const SUCCESS_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\">\
<title>Codex sign-in</title></head><body><h1>Signed in to Codex</h1>\
<p>You can close this tab and return to Codex.</p></body></html>";

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
    fn state_comparison() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", "abc"));
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
