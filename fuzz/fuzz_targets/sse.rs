//! Fuzz target: see `codex_lite::fuzzing::sse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| codex_lite::fuzzing::sse(data));
