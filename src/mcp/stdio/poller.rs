//! Unix: one thread, `mcp-stdio`, reads every stdio MCP server's stdout and stderr, so an idle
//! server costs no thread of its own (mcp.md, README *Numbers*). It waits in poll(2) on all
//! their pipes and on a wake-up socket that [`watch`] and [`nudge`] write to; each readable
//! pipe is read once per round into the thread's one buffer and fed to the server's
//! [`Reader`]. A server whose output ended (or whose connection was dropped) leaves the set
//! and is ended on a short-lived thread (it waits for the process to exit). The thread starts
//! with the first server and ends when the last one is gone.
//!
//! Nothing done on this thread may wait on one server, or it would stall the others: messages
//! are handed over through channels (`Link::dispatch`), elicitations are relayed on threads of
//! their own, and the answers this thread writes to a server's stdin (`ping`, `roots/list`)
//! give up at once when that server does not read them ([`on_poller_thread`]).

use std::cell::Cell;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::{ChildStderr, ChildStdout};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::super::client::lock;
use super::reader::Reader;
use crate::platform::{WakeReceiver, Waker};

/// Read size: the thread's one buffer, shared by every server.
const READ_CHUNK_BYTES: usize = 4096;

/// One server's pipes and their reader.
struct Watched {
    /// Open until it ends.
    stdout: Option<ChildStdout>,
    /// Open until it ends.
    stderr: Option<ChildStderr>,
    reader: Reader,
}

/// The running poller, as seen by those who hand it servers.
struct Shared {
    to_poller: Sender<Watched>,
    /// Wakes the poller up.
    wake: Waker,
}

/// The poller, while one runs. [`watch`] sends under this lock and the poller ends under it,
/// so no server is handed to a poller that is ending.
static SHARED: Mutex<Option<Shared>> = Mutex::new(None);

thread_local! {
    static IS_POLLER: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is the poller (which must not wait for any one server).
pub fn on_poller_thread() -> bool {
    IS_POLLER.get()
}

/// Hands a server's pipes to the poller, starting it if none runs.
pub fn watch(stdout: ChildStdout, stderr: ChildStderr, reader: Reader) -> std::io::Result<()> {
    let mut shared = lock(&SHARED);
    if shared.is_none() {
        *shared = Some(start()?);
    }
    let Some(poller) = shared.as_ref() else {
        return Err(std::io::Error::other("the poller is gone"));
    };
    let watched = Watched {
        stdout: Some(stdout),
        stderr: Some(stderr),
        reader,
    };
    poller
        .to_poller
        .send(watched)
        .map_err(|_| std::io::Error::other("the poller is gone"))?;
    poller.wake.wake();
    Ok(())
}

/// Asks the poller to look again at which connections are still held (one was just dropped).
pub fn nudge() {
    if let Some(poller) = lock(&SHARED).as_ref() {
        poller.wake.wake();
    }
}

fn start() -> std::io::Result<Shared> {
    let (wake, woken) = crate::platform::wake_pair()?;
    let (to_poller, from_watchers) = unbounded();
    std::thread::Builder::new()
        .name("mcp-stdio".into())
        .stack_size(super::THREAD_STACK_BYTES)
        .spawn(move || run(&from_watchers, &woken))?;
    Ok(Shared { to_poller, wake })
}

fn run(from_watchers: &Receiver<Watched>, woken: &WakeReceiver) {
    IS_POLLER.set(true);
    let mut watched: Vec<Watched> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut buf = [0u8; READ_CHUNK_BYTES];
    loop {
        watched.extend(from_watchers.try_iter());
        let mut index = 0;
        while index < watched.len() {
            let entry = &watched[index];
            let ended = entry.stdout.is_none() && entry.stderr.is_none();
            if ended || entry.reader.is_orphaned() {
                // Closing our ends of an orphan's pipes tells anything still writing to stop.
                end_in_background(watched.swap_remove(index).reader);
            } else {
                index += 1;
            }
        }
        if watched.is_empty() {
            let mut shared = lock(&SHARED);
            match from_watchers.try_recv() {
                Ok(entry) => watched.push(entry),
                Err(_) => {
                    // The last server is gone: so is this thread, until the next one.
                    *shared = None;
                    return;
                }
            }
        }
        let pollfd = |fd: Option<i32>| libc::pollfd {
            fd: fd.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        };
        fds.clear();
        fds.push(pollfd(Some(woken.as_raw_fd())));
        for entry in &watched {
            fds.push(pollfd(entry.stdout.as_ref().map(AsRawFd::as_raw_fd)));
            fds.push(pollfd(entry.stderr.as_ref().map(AsRawFd::as_raw_fd)));
        }
        let count = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
        // SAFETY: `fds` holds `count` valid pollfds (a negative fd is ignored by poll).
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), count, -1) };
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                crate::log::warn(&format!(
                    "mcp servers: waiting for their output failed: {err}"
                ));
                std::thread::sleep(Duration::from_millis(100));
            }
            continue;
        }
        if fds[0].revents != 0 {
            woken.drain();
        }
        for (entry, pair) in watched.iter_mut().zip(fds[1..].chunks(2)) {
            if pair[0].revents != 0 {
                read_once(&mut entry.stdout, false, &mut entry.reader, &mut buf);
            }
            if pair[1].revents != 0 {
                read_once(&mut entry.stderr, true, &mut entry.reader, &mut buf);
            }
        }
    }
}

/// Ends a server whose output ended (or nobody listens to any more) on a short-lived thread of
/// its own, since that waits for the process to exit: reaped, its link closed with the reason.
fn end_in_background(reader: Reader) {
    let name = format!("mcp-{}-end", reader.name());
    let reader = Arc::new(Mutex::new(Some(reader)));
    let on_thread = reader.clone();
    let spawned = std::thread::Builder::new()
        .name(name)
        .stack_size(super::THREAD_STACK_BYTES)
        .spawn(move || {
            if let Some(reader) = lock(&on_thread).take() {
                reader.end();
            }
        });
    if let Err(e) = spawned {
        crate::log::warn(&format!(
            "cannot start a thread ({e}): ending the server here"
        ));
        if let Some(reader) = lock(&reader).take() {
            reader.end();
        }
    }
}

/// Reads what is there (poll said something is) and feeds it; at the end of the stream, or
/// on an error, the pipe is closed.
fn read_once(pipe: &mut Option<impl Read>, is_stderr: bool, reader: &mut Reader, buf: &mut [u8]) {
    let Some(open) = pipe.as_mut() else {
        return;
    };
    match open.read(buf) {
        Ok(0) => *pipe = None,
        Ok(n) => reader.feed(is_stderr, &buf[..n]),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
        Err(e) => {
            crate::log::warn(&format!(
                "mcp server {}: reading its output failed: {e}",
                reader.name()
            ));
            *pipe = None;
        }
    }
}
