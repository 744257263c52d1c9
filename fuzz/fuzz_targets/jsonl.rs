//! Fuzz target: see `codex_lite::fuzzing::jsonl`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| codex_lite::fuzzing::jsonl(data));
