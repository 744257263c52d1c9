//! Running a tool's command to completion: spawning it through `exec` under the turn's sandbox,
//! streaming its output as `item/commandExecution/outputDelta` without splitting UTF-8
//! characters, and the output kept per command.

use std::path::Path;
use std::time::Duration;

use crate::exec::{self, ExecOutput, ExecRequest, OutputStream, StdinMode};
use crate::sandbox::SandboxPolicy;
use crate::turn::TurnRunner;

/// Output kept per command (head and tail) for the item and for deltas' accounting. What the
/// model reads is bounded further by the catalog's truncation policy (`output.rs`).
const COMMAND_OUTPUT_CAP_BYTES: usize = 256 * 1024;

/// Runs a command under `policy`, streaming its output as `item/commandExecution/outputDelta`
/// for `item_id` (or silently without one). An interrupt kills it at once.
pub(super) fn execute(
    turn: &mut TurnRunner,
    item_id: Option<&str>,
    argv: &[String],
    cwd: &Path,
    policy: &SandboxPolicy,
    timeout: Duration,
) -> anyhow::Result<ExecOutput> {
    let tools = turn.tools();
    let request = ExecRequest {
        argv: argv.to_vec(),
        cwd: cwd.to_path_buf(),
        sandbox_cwd: tools.settings.cwd.clone(),
        env: tools.env.env.clone(),
        timeout: Some(timeout),
        policy: policy.clone(),
        output_cap_bytes: COMMAND_OUTPUT_CAP_BYTES,
        stdin: StdinMode::Null,
    };
    let running = exec::spawn(request)?;
    turn.handle.set_running_command(Some(running.kill_handle()));
    let mut decoders = [Utf8Chunks::default(), Utf8Chunks::default()];
    let result = running.wait(&mut |stream, bytes| {
        let Some(item_id) = item_id else { return };
        let decoder = &mut decoders[usize::from(stream == OutputStream::Stderr)];
        let text = decoder.push(bytes);
        if !text.is_empty() {
            turn.item_delta("item/commandExecution/outputDelta", item_id, &text);
        }
    });
    if let Some(item_id) = item_id {
        for decoder in &mut decoders {
            let rest = decoder.finish();
            if !rest.is_empty() {
                turn.item_delta("item/commandExecution/outputDelta", item_id, &rest);
            }
        }
    }
    turn.handle.set_running_command(None);
    result
}

/// Turns byte chunks into text without splitting UTF-8 sequences across chunks (invalid bytes
/// become U+FFFD).
#[derive(Default)]
pub(crate) struct Utf8Chunks {
    pending: Vec<u8>,
}

impl Utf8Chunks {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let valid_up_to = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(), // an incomplete tail
            Err(_) => self.pending.len(),
        };
        let text = String::from_utf8_lossy(&self.pending[..valid_up_to]).into_owned();
        self.pending.drain(..valid_up_to);
        text
    }

    pub(crate) fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn utf8_chunks_never_split_characters() {
        let text = "aé漢🎉z";
        let bytes = text.as_bytes();
        for split in 0..=bytes.len() {
            let mut d = Utf8Chunks::default();
            let mut out = d.push(&bytes[..split]);
            out.push_str(&d.push(&bytes[split..]));
            out.push_str(&d.finish());
            assert_eq!(out, text, "split at {split}");
        }
        let mut d = Utf8Chunks::default();
        assert_eq!(d.push(b"a\xffb"), "a\u{fffd}b");
    }
}
