//! Entry points of the fuzz targets (`fuzz/`, `cargo fuzz`): each feeds arbitrary bytes to one
//! parser of untrusted input (hardening.md §3) the way the server does, and must return without
//! panicking, hanging or growing memory without bound whatever the bytes are. Not used by the
//! binary (the linker drops them); kept here so the parsers stay private to the crate.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// The JSONL transport: `bytes` as everything a client wrote to our stdin. Every message is
/// classified and queued (or refused) exactly as in the server; the inbox is drained and the
/// transport shut down.
pub fn jsonl(bytes: &[u8]) {
    let Ok(transport) = crate::rpc::Transport::start(Cursor::new(bytes.to_vec()), std::io::sink())
    else {
        return;
    };
    while transport.inbox.recv().is_some() {}
    transport.finish(Duration::from_secs(1));
}

/// The SSE parser: `bytes` as a response body, delivered in chunks whose sizes come from the
/// first byte (so the fuzzer explores line and CR/LF splits across reads), with a small event
/// limit so the size checks are reached.
pub fn sse(bytes: &[u8]) {
    let Some((&chunk, body)) = bytes.split_first() else {
        return;
    };
    let chunk = usize::from(chunk % 16) + 1;
    let mut parser = crate::client::sse::SseParser::new(4096);
    for piece in body.chunks(chunk) {
        parser.push(piece);
        while let Ok(Some(event)) = parser.next_event() {
            let _ = (event.event.len(), event.data.len());
        }
    }
}

/// The apply_patch grammar: `bytes` (as UTF-8, lossily) as a patch the model sent, parsed alone
/// and as the script of a `bash -lc` invocation the way the shell tool recognises one.
pub fn apply_patch(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let _ = crate::apply_patch::parse_patch(&text);
    let script = text.into_owned();
    let _ = crate::apply_patch::is_bare_patch(&["bash".into(), "-lc".into(), script]);
}

/// The rollout reader: `bytes` as a rollout file on disk (which other programs, crashes and
/// users write too), loaded whole and read for a listing summary.
pub fn rollout(bytes: &[u8]) {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    let path = FILE.get_or_init(|| {
        std::env::temp_dir().join(format!(
            "codex-lite-fuzz-{}/rollout-2025-01-01T00-00-00-01940000-0000-7000-8000-000000000000.jsonl",
            std::process::id()
        ))
    });
    if let Some(dir) = path.parent()
        && std::fs::create_dir_all(dir).is_err()
    {
        return;
    }
    if std::fs::write(path, bytes).is_err() {
        return;
    }
    let _ = crate::rollout::load(path);
    let _ = crate::rollout::read_summary(path);
}

/// The `-c key=value` parser: `bytes` as newline-separated overrides, parsed, then applied to the
/// configuration of this process's CODEX_HOME (loaded once; the fuzz target points CODEX_HOME at
/// an empty directory first), which types and validates every value.
pub fn config_overrides(bytes: &[u8]) {
    static BASE: OnceLock<Option<crate::config::Config>> = OnceLock::new();
    let base = BASE.get_or_init(|| crate::config::load(&[]).ok());
    config_overrides_on(base.as_ref(), bytes);
}

/// [`config_overrides`] applied to `base` (none: parsing only).
pub fn config_overrides_on(base: Option<&crate::config::Config>, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let raw: Vec<String> = text.lines().map(str::to_string).collect();
    let Ok(overrides) = crate::config::parse_overrides(&raw) else {
        return;
    };
    for (path, _) in &overrides {
        let _ = crate::config::unknown_override_key(path);
    }
    if let Some(base) = base {
        let _ = base.with_overrides(&overrides);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed seeds and a few hostile inputs go through every entry point.
    #[test]
    fn entry_points_survive_hostile_input() {
        let inputs: [&[u8]; 8] = [
            b"",
            b"\n\n\r\n",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{}}\n",
            b"{\"id\":",
            b"data: {\"type\":\"response.created\"}\r\n\r\nevent: x\rdata: y\n\n",
            b"*** Begin Patch\n*** Update File: a\n@@\n-x\n+y\n*** End Patch\n",
            b"{\"type\":\"session_meta\",\"payload\":{\"id\":\"x\"}}\n{\"type\":\"response_item\"",
            b"model=\"gpt\"\nmodel_providers.x={name=1}\n=\n\xff\xfe=\"\n",
        ];
        for input in inputs {
            jsonl(input);
            sse(input);
            apply_patch(input);
            rollout(input);
            config_overrides_on(None, input);
        }
        let _ = std::fs::remove_dir_all(
            std::env::temp_dir().join(format!("codex-lite-fuzz-{}", std::process::id())),
        );
    }
}
