//! The browser login's local callback server: the `login-callback` thread waits
//! (`crate::platform::wait_readable`, no busy loop) on the listener and on a wake-up socket until the login ends, is canceled, or
//! times out, then closes the listener; each connection is served on its own short-lived
//! `login-callback-conn` thread, so a browser's idle pre-connection or a slow token exchange
//! never keeps the server from noticing a cancel.
//!
//! Routes: `GET /auth/callback` (checks `state`, exchanges the code, redirects to
//! `/success`), `GET /success` (after a success), anything else 404.
//!
//! Does not own: binding the port, PKCE and the authorize URL (`browser.rs`).

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::http::{
    Response, first, html_escape, parse_pairs, parse_request_line, read_request_head,
};
use super::{
    Completion, LOGIN_TIMED_OUT, LoginCallback, LoginOptions, LoginSuccess, complete_login, oauth,
};
use crate::log;
use crate::platform::{WakeReceiver, Waker};
use crate::secret::Secret;

/// How long the server stays up after a successful login to serve `/success`.
const SUCCESS_PAGE_LINGER: Duration = Duration::from_secs(10);
/// Read and write bound of one callback connection.
const CONNECTION_IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed unanswered.
const MAX_CONNECTIONS: usize = 8;
/// Pause after an unexpected `accept` error (e.g. out of file descriptors), so a listener
/// that stays readable cannot spin the thread.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// What the callback server and its connections share.
pub(super) struct Flow {
    pub(super) login_id: String,
    pub(super) opts: LoginOptions,
    pub(super) state: Secret,
    pub(super) code_verifier: Secret,
    pub(super) redirect_uri: String,
    pub(super) success_url: String,
    pub(super) completion: Completion,
    /// Set to close the server (cancel, failure, success page served).
    pub(super) stop: AtomicBool,
    /// Set once the login succeeded: the server lingers for `/success`.
    pub(super) succeeded: AtomicBool,
    /// Set by the first callback with the right state: only one exchange per login.
    pub(super) claimed: AtomicBool,
    /// Write end of the server thread's wake-up socket.
    pub(super) waker: Waker,
}

impl Flow {
    pub(super) fn stop_server(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub(super) fn wake(&self) {
        self.waker.wake();
    }
}

/// The `login-callback` thread: accepts connections until the login is over, then closes the
/// listener, releases `cancel`, and reports a timeout if that is how it ended.
pub(super) fn serve(
    flow: Arc<Flow>,
    listener: TcpListener,
    wake_rx: WakeReceiver,
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
        match crate::platform::wait_readable(&listener, &wake_rx, limit - now) {
            Ok((listener_ready, wake_ready)) => {
                if wake_ready {
                    wake_rx.drain();
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
mod tests {
    use super::*;

    #[test]
    fn state_comparison() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", "abc"));
    }
}
