//! Not Unix: pipes cannot be polled together here, so each stdio server gets a reader thread
//! of its own (`mcp-<name>-reader`, blocking reads of stdout) and a helper for stderr
//! (`mcp-<name>-stderr`) for as long as it lives. At the end of its output the server is
//! ended on the reader thread.

use std::io::Read;
use std::process::{ChildStderr, ChildStdout};

use super::reader::Reader;

/// Chunks of stderr waiting for the reader thread.
const STDERR_QUEUE_CHUNKS: usize = 16;
/// Read size of both threads.
const READ_CHUNK_BYTES: usize = 4096;

/// Never: each server has its own reader thread here, so waiting stalls no other server.
pub fn on_poller_thread() -> bool {
    false
}

/// Nothing to do: a reader thread ends with its server's output.
pub fn nudge() {}

/// Starts the server's reader threads.
pub fn watch(
    mut stdout: ChildStdout,
    mut stderr: ChildStderr,
    mut reader: Reader,
) -> std::io::Result<()> {
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(STDERR_QUEUE_CHUNKS);
    std::thread::Builder::new()
        .name(format!("mcp-{}-stderr", reader.name()))
        .stack_size(super::THREAD_STACK_BYTES)
        .spawn(move || {
            let mut buf = vec![0u8; READ_CHUNK_BYTES];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        })?;
    std::thread::Builder::new()
        .name(format!("mcp-{}-reader", reader.name()))
        .stack_size(super::THREAD_STACK_BYTES)
        .spawn(move || {
            let mut buf = vec![0u8; READ_CHUNK_BYTES];
            loop {
                rx.try_iter().for_each(|chunk| reader.feed(true, &chunk));
                if reader.is_orphaned() {
                    break;
                }
                match stdout.read(&mut buf) {
                    Ok(n) if n > 0 => reader.feed(false, &buf[..n]),
                    _ => break,
                }
            }
            drop(stdout);
            // The process is ending: the rest of its stderr says why.
            rx.iter().for_each(|chunk| reader.feed(true, &chunk));
            reader.end();
        })?;
    Ok(())
}
