//! A thread's live unified exec sessions, bounded: at most [`MAX_SESSIONS`]; making room for a
//! new one stops the session the model used least recently among those no call is waiting on
//! (one that already ended first). Stopping is SIGTERM to the process group, then SIGKILL after
//! [`TERMINATE_GRACE`] for a process that ignores it; the pending SIGKILLs are process-wide so
//! that shutdown can finish them before the server exits.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::session::Session;
use crate::thread::lock;

/// Live sessions per thread.
pub const MAX_SESSIONS: usize = 64;
/// Between SIGTERM and SIGKILL.
pub const TERMINATE_GRACE: Duration = Duration::from_secs(2);
/// After SIGKILL, how long shutdown waits for the processes to be gone.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// Sessions sent SIGTERM, with the moment they get SIGKILL if still running.
static STOPPING: Mutex<Vec<(Instant, Arc<Session>)>> = Mutex::new(Vec::new());

/// One thread's sessions, in the order they started.
#[derive(Default)]
pub struct SessionStore {
    sessions: Mutex<Vec<Arc<Session>>>,
}

impl SessionStore {
    /// The session the model calls `id`.
    pub fn get(&self, id: i32) -> Option<Arc<Session>> {
        lock(&self.sessions).iter().find(|s| s.id == id).cloned()
    }

    /// Forgets a session (its end was reported to the model).
    pub fn remove(&self, id: i32) {
        lock(&self.sessions).retain(|s| s.id != id);
    }

    /// A fresh id for a new session: a random number of 4–5 digits (the ids the reference
    /// gives), unused in this store.
    pub fn new_id(&self) -> i32 {
        let sessions = lock(&self.sessions);
        loop {
            let mut bytes = [0u8; 4];
            crate::ids::fill_random(&mut bytes);
            let id = 1000 + (u32::from_le_bytes(bytes) % 99_000) as i32;
            if !sessions.iter().any(|s| s.id == id) {
                return id;
            }
        }
    }

    /// Makes room for one more session: when full, removes the one to stop (an ended one first,
    /// else the least recently used that no call waits on) and returns it for
    /// [`terminate`]. `None` when there is room, or when every session is in use.
    pub fn make_room(&self) -> Option<Arc<Session>> {
        let mut sessions = lock(&self.sessions);
        if sessions.len() < MAX_SESSIONS {
            return None;
        }
        let victim = sessions
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_attached())
            .min_by_key(|(_, s)| (!s.is_finished(), s.last_used()))
            .map(|(index, _)| index)?;
        Some(sessions.remove(victim))
    }

    /// Adds a started session.
    pub fn insert(&self, session: Arc<Session>) {
        lock(&self.sessions).push(session);
    }

    /// Removes every session and stops their processes (interrupt, unload).
    pub fn terminate_all(&self) {
        let sessions = std::mem::take(&mut *lock(&self.sessions));
        terminate(sessions);
    }

    /// Removes every session without stopping it (shutdown collects them to stop and wait).
    pub fn take_all(&self) -> Vec<Arc<Session>> {
        std::mem::take(&mut *lock(&self.sessions))
    }
}

impl Drop for SessionStore {
    /// A thread that goes away (unloaded, or the server ends) stops its processes.
    fn drop(&mut self) {
        self.terminate_all();
    }
}

/// Stops `sessions`: SIGTERM now, SIGKILL after [`TERMINATE_GRACE`] for those still running
/// (on a short-lived `exec-reaper` thread). Returns at once.
pub fn terminate(sessions: Vec<Arc<Session>>) {
    if sessions.is_empty() {
        return;
    }
    let kill_at = Instant::now() + TERMINATE_GRACE;
    for session in &sessions {
        session.terminate();
    }
    lock(&STOPPING).extend(sessions.iter().map(|s| (kill_at, Arc::clone(s))));
    let reaper = std::thread::Builder::new()
        .name("exec-reaper".into())
        .spawn(move || finish(&sessions, kill_at));
    if let Err(e) = reaper {
        crate::log::warn(&format!(
            "cannot start the exec reaper ({e}); sessions that ignore SIGTERM are killed at shutdown"
        ));
    }
}

/// Waits for `sessions` to end until `kill_at`, SIGKILLs the rest, waits for them a little, and
/// forgets them from the pending list.
fn finish(sessions: &[Arc<Session>], kill_at: Instant) {
    for session in sessions {
        let _ = session.done().recv_deadline(kill_at);
        if !session.is_finished() {
            session.kill_handle().kill();
        }
    }
    let gone_by = Instant::now() + KILL_WAIT;
    for session in sessions {
        let _ = session.done().recv_deadline(gone_by);
    }
    lock(&STOPPING).retain(|(_, s)| !sessions.iter().any(|done| Arc::ptr_eq(s, done)));
}

/// Shutdown: stops `sessions` (every thread's) and waits, at most [`TERMINATE_GRACE`] plus the
/// kill wait, until they and every session stopped earlier are gone.
pub fn stop_all_and_wait(sessions: Vec<Arc<Session>>) {
    let kill_at = Instant::now() + TERMINATE_GRACE;
    for session in &sessions {
        session.terminate();
    }
    let mut all: Vec<(Instant, Arc<Session>)> =
        sessions.into_iter().map(|s| (kill_at, s)).collect();
    all.extend(lock(&STOPPING).iter().cloned());
    for (kill_at, session) in &all {
        let _ = session.done().recv_deadline(*kill_at);
        if !session.is_finished() {
            session.kill_handle().kill();
        }
    }
    let gone_by = Instant::now() + KILL_WAIT;
    for (_, session) in &all {
        let _ = session.done().recv_deadline(gone_by);
    }
}
