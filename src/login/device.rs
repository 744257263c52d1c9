//! The device-code login (auth.md §3.3): the user types a code at `<issuer>/codex/device`
//! while the `login-device` thread polls the issuer, then exchanges the authorization code it
//! hands out (with `redirect_uri=<issuer>/deviceauth/callback`) and reports through the
//! login's [`LoginCallback`].
//!
//! Does not own: showing the code to the user (the client app does), persisting the result.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::oauth::{self, DeviceCode};
use super::{Completion, LOGIN_CANCELED, LoginCallback, LoginOptions, complete_login};
use crate::ids;
use crate::log;

/// How long a device login polls before giving up (auth.md §3.3).
pub const DEVICE_LOGIN_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The shortest wait between polls, whatever interval the issuer asks for: an issuer saying
/// `0` must not make us hammer it.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The failure message when [`DEVICE_LOGIN_TIMEOUT`] passes (the reference's text).
pub const DEVICE_LOGIN_TIMED_OUT: &str = "device auth timed out after 15 minutes";

/// A pending device-code login: the client shows `verification_url` and `user_code`; the
/// outcome arrives through the login's callback. Dropping the handle does not cancel it.
pub struct DeviceLogin {
    /// Identifies the login in `account/login/completed` and `account/login/cancel` (UUID v7).
    pub login_id: String,
    /// Where the user enters the code: `<issuer>/codex/device`.
    pub verification_url: String,
    /// The code to enter.
    pub user_code: String,
    flow: Arc<Flow>,
}

impl DeviceLogin {
    /// Ends the login: stops the polling (at once when it is waiting, after the request in
    /// flight otherwise) and, unless the login already ended, reports `Err("login canceled")`
    /// on the calling thread. Idempotent. True when this call ended the login, false when it
    /// had already ended.
    pub fn cancel(&self) -> bool {
        self.flow.stop();
        let canceled = self.flow.completion.finish(Err(LOGIN_CANCELED.to_string()));
        if canceled {
            log::info(&format!("login {}: canceled", self.login_id));
        }
        canceled
    }
}

struct Flow {
    login_id: String,
    opts: LoginOptions,
    completion: Completion,
    canceled: AtomicBool,
    /// Dropped on cancel, which wakes the thread's wait between polls.
    wake_tx: Mutex<Option<Sender<()>>>,
}

impl Flow {
    fn stop(&self) {
        self.canceled.store(true, Ordering::SeqCst);
        drop(
            self.wake_tx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }

    fn is_canceled(&self) -> bool {
        self.canceled.load(Ordering::SeqCst)
    }
}

/// Timing of a device login; tests shorten it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    pub overall: Duration,
    pub min_interval: Duration,
}

const TIMING: Timing = Timing {
    overall: DEVICE_LOGIN_TIMEOUT,
    min_interval: MIN_POLL_INTERVAL,
};

/// Starts a device-code login: requests the user code (blocking, up to 30 s — run it off the
/// main loop), then polls on the `login-device` thread every `interval` the issuer asked for
/// (at least 1 s) for up to 15 minutes. `on_done` is called exactly once, unless this returns
/// `Err` (then never).
pub fn start_device_login(
    opts: LoginOptions,
    on_done: LoginCallback,
) -> anyhow::Result<DeviceLogin> {
    start(opts, on_done, TIMING)
}

/// [`start_device_login`] with other timing (tests).
pub(super) fn start(
    opts: LoginOptions,
    on_done: LoginCallback,
    timing: Timing,
) -> anyhow::Result<DeviceLogin> {
    let device = oauth::request_device_code(&opts.issuer).context("requesting a device code")?;
    let login_id = ids::uuid_v7();
    let verification_url = oauth::endpoint(&opts.issuer, "/codex/device");
    let (wake_tx, wake_rx) = crossbeam_channel::bounded(0);
    let user_code = device.user_code.clone();
    let flow = Arc::new(Flow {
        login_id: login_id.clone(),
        opts,
        completion: Completion::new(on_done),
        canceled: AtomicBool::new(false),
        wake_tx: Mutex::new(Some(wake_tx)),
    });
    let thread_flow = flow.clone();
    std::thread::Builder::new()
        .name("login-device".into())
        .spawn(move || run(&thread_flow, &device, &wake_rx, timing))
        .context("starting the device login thread")?;
    log::info(&format!("login {login_id}: device code issued, polling"));
    Ok(DeviceLogin {
        login_id,
        verification_url,
        user_code,
        flow,
    })
}

/// The `login-device` thread: poll until approved, canceled, failed or timed out; then
/// exchange and report.
fn run(flow: &Flow, device: &DeviceCode, wake_rx: &Receiver<()>, timing: Timing) {
    let started = Instant::now();
    let interval = device.interval.max(timing.min_interval);
    let grant = loop {
        if flow.is_canceled() {
            return;
        }
        match oauth::poll_device_token(&flow.opts.issuer, device) {
            Ok(Some(grant)) => break grant,
            Ok(None) => {
                let left = timing.overall.saturating_sub(started.elapsed());
                if left.is_zero() {
                    finish(flow, Err(DEVICE_LOGIN_TIMED_OUT.to_string()));
                    return;
                }
                match wake_rx.recv_timeout(interval.min(left)) {
                    Err(RecvTimeoutError::Timeout) => {}
                    // Only cancel disconnects it; nothing is ever sent.
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            Err(e) => {
                finish(flow, Err(format!("device auth failed: {e}")));
                return;
            }
        }
    };
    if flow.is_canceled() {
        return;
    }
    let redirect_uri = oauth::endpoint(&flow.opts.issuer, "/deviceauth/callback");
    let result = oauth::exchange_code(
        &flow.opts.issuer,
        grant.authorization_code.expose(),
        &redirect_uri,
        grant.code_verifier.expose(),
    )
    .map_err(|e| format!("token exchange failed: {e}"))
    .and_then(|tokens| complete_login(&flow.login_id, &flow.opts, tokens));
    finish(flow, result);
}

fn finish(flow: &Flow, result: Result<super::LoginSuccess, String>) {
    let outcome = match &result {
        Ok(_) => "succeeded".to_string(),
        Err(message) => format!("failed: {message}"),
    };
    if flow.completion.finish(result) {
        log::info(&format!("login {}: {outcome}", flow.login_id));
    }
}
