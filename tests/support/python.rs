//! Python environments the tests provision for themselves, so that a fresh clone passes
//! `cargo test` with only Python 3 (venv and pip) and network access to PyPI: the official MCP
//! SDK (`.ci/mcp-requirements.txt`, every version pinned) in `target/mcp-venv`.
//!
//! Built once: the first test that needs it takes an exclusive lock on `target/mcp-venv.lock`
//! (so several test binaries, threads or `cargo test` runs never build it at once), builds the
//! venv, and writes a stamp with the requirements it was built from; later runs find the stamp
//! and skip the work. Changing the requirements file rebuilds it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Overrides the venv: a Python that already has the `mcp` SDK.
const PYTHON_ENV: &str = "CODEX_LITE_MCP_PYTHON";
/// Where the pinned requirements are, from the repository's root.
const REQUIREMENTS: &str = ".ci/mcp-requirements.txt";
/// The file in the venv holding the requirements it was built from.
const STAMP: &str = "codex-lite-requirements.txt";

/// The Python to run the MCP test servers with: `$CODEX_LITE_MCP_PYTHON`, else
/// `target/mcp-venv/bin/python`, built on first use. Panics with what to do when neither works.
pub fn mcp_python() -> PathBuf {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match FOUND.get_or_init(find_or_build) {
        Ok(path) => path.clone(),
        Err(why) => panic!("{why}"),
    }
}

fn find_or_build() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(PYTHON_ENV) {
        let path = PathBuf::from(path);
        return if has_mcp(&path) {
            Ok(path)
        } else {
            Err(format!(
                "{PYTHON_ENV}={} cannot `import mcp.server.fastmcp`; unset it to let the tests \
                 build target/mcp-venv, or install the pinned SDK there: \
                 `pip install -r {REQUIREMENTS}`",
                path.display()
            ))
        };
    }
    // `CARGO_TARGET_TMPDIR` is `<target dir>/tmp`: the venv sits beside it, wherever the target
    // directory is.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .ok_or("the target directory has no parent")?;
    let venv = target.join("mcp-venv");
    let requirements_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(REQUIREMENTS);
    let requirements = std::fs::read_to_string(&requirements_path)
        .map_err(|e| format!("reading {}: {e}", requirements_path.display()))?;
    let python = venv.join(PYTHON_IN_VENV);

    std::fs::create_dir_all(target).map_err(|e| format!("creating {}: {e}", target.display()))?;
    let lock_path = target.join("mcp-venv.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
    // Released when `lock` drops, or by the kernel if this process dies while building.
    File::lock(&lock).map_err(|e| format!("locking {}: {e}", lock_path.display()))?;

    let stamp = venv.join(STAMP);
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == requirements) && has_mcp(&python) {
        return Ok(python);
    }
    build(&venv, &requirements_path)?;
    if !has_mcp(&python) {
        return Err(format!(
            "built {} from {REQUIREMENTS}, but its Python cannot `import mcp.server.fastmcp`",
            venv.display()
        ));
    }
    std::fs::write(&stamp, &requirements)
        .map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    Ok(python)
}

/// (Re)creates `venv` and installs `requirements` into it; the error says what failed and what
/// to do about it.
fn build(venv: &Path, requirements: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(venv);
    let base = BASE_PYTHON;
    // Past libtest's capture: a minute of pip should not look like a hang.
    let _ = writeln!(
        std::io::stderr(),
        "tests: building {} for the MCP tests (once; needs PyPI)",
        venv.display()
    );
    let created = run(Command::new(base).args(["-m", "venv"]).arg(venv));
    if let Err(out) = created {
        let _ = std::fs::remove_dir_all(venv);
        return Err(format!(
            "the MCP tests need a Python venv, and `{base} -m venv {}` failed (install Python 3 with \
             its venv module, e.g. Debian's python3-venv; or set {PYTHON_ENV} to a Python that \
             has the `mcp` SDK):\n{out}",
            venv.display()
        ));
    }
    let installed = run(Command::new(venv.join(PYTHON_IN_VENV))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--retries", "2", "-r"])
        .arg(requirements));
    if let Err(out) = installed {
        let _ = std::fs::remove_dir_all(venv);
        return Err(format!(
            "the MCP tests need the official MCP Python SDK, and `pip install -r {REQUIREMENTS}` \
             into {} failed: is PyPI reachable (a proxy or index configured for pip)? Or set \
             {PYTHON_ENV} to a Python that has the pinned SDK.\n{out}",
            venv.display()
        ));
    }
    Ok(())
}

/// Runs `cmd`; on failure, its status and the tail of its output.
fn run(cmd: &mut Command) -> Result<(), String> {
    match cmd.output() {
        Ok(Output { status, .. }) if status.success() => Ok(()),
        Ok(out) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err(format!("{}\n{}", out.status, tail.join("\n")))
        }
        Err(e) => Err(format!("cannot run {:?}: {e}", cmd.get_program())),
    }
}

/// Whether `python` runs and has the MCP SDK's server part.
fn has_mcp(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import mcp.server.fastmcp"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[cfg(unix)]
const PYTHON_IN_VENV: &str = "bin/python";
#[cfg(windows)]
const PYTHON_IN_VENV: &str = "Scripts/python.exe";
#[cfg(unix)]
const BASE_PYTHON: &str = "python3";
#[cfg(windows)]
const BASE_PYTHON: &str = "python";
