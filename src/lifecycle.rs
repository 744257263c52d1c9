//! The server process against the outside world: the `app-server-watch` thread turns a
//! termination signal (SIGTERM, SIGHUP, SIGINT) or a client that closed its end of our stdout
//! into a [`StopReason`] for the main loop, which then stops the turns, kills every command,
//! flushes and exits. Writes that fail are reported by the stdout writer itself (`rpc/writer.rs`); this
//! watcher also catches a reader that went away while we had nothing to say.
//!
//! What the signals and the stdout probe are on each OS is `crate::platform`'s.

use std::time::Duration;

use crossbeam_channel::Sender;

use crate::rpc::StopReason;

/// How often the watcher looks at stdout between signals (a vanished reader is noticed within
/// this long even when we write nothing).
const STDOUT_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Makes termination signals wait for the watcher. Call before starting any thread.
pub fn catch_signals() {
    if let Err(e) = crate::platform::catch_termination_signals() {
        crate::log::warn(&format!(
            "cannot catch termination signals ({e}); they will end the server abruptly"
        ));
    }
}

/// Starts the `app-server-watch` thread, which sends the first reason to stop to `stop` and
/// ends.
pub fn watch(stop: Sender<StopReason>) {
    let spawned = std::thread::Builder::new()
        .name("app-server-watch".into())
        .spawn(move || {
            let reason = loop {
                if let Some(signal) =
                    crate::platform::wait_termination_signal(STDOUT_CHECK_INTERVAL)
                {
                    break StopReason::Signal(signal);
                }
                if crate::platform::is_stdout_closed() {
                    break StopReason::ClientGone;
                }
            };
            let _ = stop.send(reason);
        });
    if let Err(e) = spawned {
        crate::log::warn(&format!("cannot start the signal watcher: {e}"));
    }
}

/// A log line for why the server stops.
pub fn describe(reason: StopReason) -> String {
    match reason {
        StopReason::ClientGone => "the client closed our stdout; shutting down".to_string(),
        StopReason::Signal(signal) => format!("caught signal {signal}; shutting down"),
    }
}
