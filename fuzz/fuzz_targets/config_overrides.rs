//! Fuzz target: see `codex_lite::fuzzing::config_overrides`.
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: {
        // An empty CODEX_HOME of our own, set before any other thread exists.
        let home = std::env::temp_dir().join(format!("codex-lite-fuzz-home-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&home);
        // SAFETY: libFuzzer runs `init` once, single-threaded, before the first input.
        unsafe { std::env::set_var("CODEX_HOME", &home) };
    },
    |data: &[u8]| codex_lite::fuzzing::config_overrides(data)
);
