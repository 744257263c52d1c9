//! How much slower a build is inside the Linux sandbox (issue 15: at most 10 %). Generates a
//! small crate (a library of a few generic modules and a binary), then times `cargo build`
//! from clean outside the sandbox and inside it (workspace-write, through the helper exactly as
//! the server runs commands), alternating, and prints the medians.
//!
//! ```text
//! cargo build --release && cargo run --release --example sandbox_build [-- ROUNDS]
//! ```
//! Linux only. Uses the `codex-lite` binary next to this example's directory (target/release).
//! A failure to set up is a panic with a message: this is a measuring tool, not the server.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    if !cfg!(target_os = "linux") {
        eprintln!("sandbox_build: the Linux sandbox only");
        std::process::exit(1);
    }
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let exe = std::env::current_exe().expect("own path");
    let helper = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("codex-lite"))
        .filter(|p| p.exists())
        .expect("target/<profile>/codex-lite next to the examples directory: build it first");
    // Outside /tmp so the sandbox's writable roots are exactly the crate and /tmp.
    let base = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| exe.parent().unwrap().join("sandbox-build"));
    let krate = base.join(format!("sandbox-build-crate-{}", std::process::id()));
    write_crate(&krate);
    // One untimed build each way warms the page cache and the toolchain's files.
    clean(&krate);
    build(&krate, None);
    clean(&krate);
    build(&krate, Some(&helper));
    let mut outside = Vec::new();
    let mut inside = Vec::new();
    for _ in 0..rounds {
        clean(&krate);
        outside.push(build(&krate, None));
        clean(&krate);
        inside.push(build(&krate, Some(&helper)));
    }
    let (o, i) = (median(&mut outside), median(&mut inside));
    let overhead = (i.as_secs_f64() / o.as_secs_f64() - 1.0) * 100.0;
    println!("cargo build of a small crate from clean, median of {rounds} (alternating):");
    println!(
        "  outside the sandbox   {:>7.0} ms",
        o.as_secs_f64() * 1000.0
    );
    println!(
        "  inside (workspace-write, network off)   {:>7.0} ms",
        i.as_secs_f64() * 1000.0
    );
    println!("  overhead              {overhead:>+7.1} %");
    let _ = std::fs::remove_dir_all(&krate);
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The helper as the server runs it: our binary under argv[0] `codex-linux-sandbox`.
#[cfg(unix)]
fn helper_command(helper: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(helper);
    cmd.arg0("codex-linux-sandbox");
    cmd
}

/// No Linux helper elsewhere (`main` stops before any build).
#[cfg(not(unix))]
fn helper_command(_helper: &Path) -> Command {
    eprintln!("sandbox_build: the Linux sandbox only");
    std::process::exit(1);
}

fn clean(krate: &Path) {
    let _ = std::fs::remove_dir_all(krate.join("target"));
}

/// One `cargo build --offline` of `krate`, directly or through the helper; its wall time.
fn build(krate: &Path, helper: Option<&Path>) -> Duration {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let argv = [cargo.as_str(), "build", "--offline", "--quiet"];
    let mut cmd = match helper {
        None => {
            let mut cmd = Command::new(argv[0]);
            cmd.args(&argv[1..]);
            cmd
        }
        Some(helper) => {
            let policy = r#"{"type":"workspace-write","writable_roots":[],"network_access":false,"exclude_tmpdir_env_var":true,"exclude_slash_tmp":false}"#;
            let mut cmd = helper_command(helper);
            cmd.arg("--sandbox-policy-cwd")
                .arg(krate)
                .arg("--sandbox-policy")
                .arg(policy)
                .arg("--")
                .args(argv);
            cmd
        }
    };
    cmd.current_dir(krate)
        .env("CARGO_TARGET_DIR", krate.join("target"))
        .env_remove("TMPDIR")
        .stdin(Stdio::null());
    let started = Instant::now();
    let out = cmd.output().expect("running cargo");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "cargo build failed ({}): {}",
        if helper.is_some() {
            "sandboxed"
        } else {
            "unconfined"
        },
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// A crate with a few modules of generic code: enough work for rustc to take a second or two.
fn write_crate(dir: &Path) {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).expect("crate dir");
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"sandbox-build\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n",
    )
    .expect("Cargo.toml");
    let mut lib = String::new();
    for m in 0..12 {
        lib.push_str(&format!("pub mod m{m};\n"));
        let mut module = String::new();
        for f in 0..40 {
            module.push_str(&format!(
                "pub fn f{f}<T: Clone + std::fmt::Debug + PartialOrd>(items: &[T]) -> Vec<String> {{\n    \
                 let mut v: Vec<T> = items.to_vec();\n    \
                 v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));\n    \
                 v.iter().map(|x| format!(\"{{x:?}}-{m}-{f}\")).collect()\n}}\n"
            ));
        }
        module.push_str("pub fn all() -> usize {\n    let mut n = 0;\n");
        for f in 0..40 {
            module.push_str(&format!(
                "    n += f{f}(&[3u32, 1, 2]).len() + f{f}(&[\"b\", \"a\"]).len() + f{f}(&[1.5f64, 0.5]).len();\n"
            ));
        }
        module.push_str("    n\n}\n");
        std::fs::write(src.join(format!("m{m}.rs")), module).expect("module");
    }
    std::fs::write(src.join("lib.rs"), lib).expect("lib.rs");
    let mut main = String::from("fn main() {\n    let mut n = 0;\n");
    for m in 0..12 {
        main.push_str(&format!("    n += sandbox_build::m{m}::all();\n"));
    }
    main.push_str("    println!(\"{n}\");\n}\n");
    std::fs::write(src.join("main.rs"), main).expect("main.rs");
}
