//! The `sandbox` subcommand (sandbox.md §4): run one command under the platform sandbox with
//! inherited stdio, to try policies by hand.
//!
//! ```text
//! codex-lite sandbox linux [--full-auto] [-c key=value]... [--] COMMAND...   (aliases: sandbox landlock, debug landlock)
//! codex-lite sandbox macos [--full-auto] [-c key=value]... [--] COMMAND...   (alias: sandbox seatbelt)
//! ```
//! Read-only by default, workspace-write with `--full-auto` (the `[sandbox_workspace_write]`
//! settings of config.toml and `-c` apply); cwd is the current directory; the exit status is the
//! command's, 128+signal when it was killed. The confinement itself is the helper's/Seatbelt's.

use std::ffi::OsString;

use super::{SandboxError, SandboxPolicy};
use crate::config::SandboxMode;

const USAGE: &str = "usage: codex-lite sandbox linux|macos [--full-auto] [-c key=value]... [--] \
                     COMMAND...";

/// Which sandbox the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Platform {
    Linux,
    MacOs,
}

/// The parsed command line.
#[derive(Debug, PartialEq)]
struct CliArgs {
    platform: Platform,
    full_auto: bool,
    overrides: Vec<String>,
    command: Vec<String>,
}

/// Runs the subcommand. `args` starts at the platform word (`linux`, `landlock`, `macos`,
/// `seatbelt`); for `debug landlock` pass the arguments from `landlock` on. Returns the exit
/// status for `main` to exit with.
pub fn main(args: &[OsString]) -> i32 {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let parsed = match parse(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return 2;
        }
    };
    if let Err(e) = check_platform(parsed.platform) {
        eprintln!("{e}");
        return 1;
    }
    match run(&parsed) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

fn parse(args: &[String]) -> Result<CliArgs, String> {
    let (platform, rest) = match args.split_first() {
        Some((word, rest)) => match word.as_str() {
            "linux" | "landlock" => (Platform::Linux, rest),
            "macos" | "seatbelt" => (Platform::MacOs, rest),
            other => return Err(format!("unknown sandbox `{other}`")),
        },
        None => return Err("missing sandbox (linux or macos)".to_string()),
    };
    let mut full_auto = false;
    let mut overrides = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let arg = rest[i].as_str();
        match arg {
            "--" => {
                i += 1;
                break;
            }
            "--full-auto" => full_auto = true,
            "-c" | "--config" => {
                i += 1;
                let value = rest.get(i).ok_or(format!("{arg} needs key=value"))?;
                overrides.push(value.clone());
            }
            _ if arg.starts_with("--config=") => {
                overrides.push(arg["--config=".len()..].to_string());
            }
            _ if arg.starts_with('-') => return Err(format!("unknown option `{arg}`")),
            _ => break,
        }
        i += 1;
    }
    let command = rest[i.min(rest.len())..].to_vec();
    if command.is_empty() {
        return Err("missing COMMAND".to_string());
    }
    Ok(CliArgs {
        platform,
        full_auto,
        overrides,
        command,
    })
}

fn check_platform(platform: Platform) -> Result<(), SandboxError> {
    match platform {
        Platform::Linux if !cfg!(target_os = "linux") => Err(SandboxError::WrongPlatform(
            "Landlock sandbox is only available on Linux",
        )),
        Platform::MacOs if !cfg!(target_os = "macos") => Err(SandboxError::WrongPlatform(
            "Seatbelt sandbox is only available on macOS",
        )),
        _ => Ok(()),
    }
}

fn run(args: &CliArgs) -> anyhow::Result<i32> {
    use anyhow::Context;
    let config = crate::config::load(&args.overrides)?;
    super::configure(&config);
    let mode = if args.full_auto {
        SandboxMode::WorkspaceWrite
    } else {
        SandboxMode::ReadOnly
    };
    let policy = SandboxPolicy::from_config(mode, &config.sandbox_workspace_write)?;
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let env = config.shell_environment_policy.build(std::env::vars_os());
    let mut cmd = crate::exec::sandboxed_command(&policy, &cwd, &args.command, &env)?;
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawning {}", args.command[0]))?;
    // The terminal's Ctrl-C/Ctrl-\ reach the command too; its outcome decides our status.
    crate::exec::ignore_terminal_interrupts();
    let status = child.wait().context("waiting for the command")?;
    Ok(crate::exec::exit_status_code(status))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_platforms_options_and_command() {
        let parsed = parse(&strings(&[
            "landlock",
            "--full-auto",
            "-c",
            "a=1",
            "--config=b=2",
            "--",
            "ls",
            "-l",
        ]))
        .unwrap();
        assert_eq!(
            parsed,
            CliArgs {
                platform: Platform::Linux,
                full_auto: true,
                overrides: strings(&["a=1", "b=2"]),
                command: strings(&["ls", "-l"]),
            }
        );
        let parsed = parse(&strings(&["seatbelt", "echo", "--full-auto"])).unwrap();
        assert_eq!(parsed.platform, Platform::MacOs);
        assert!(!parsed.full_auto);
        assert_eq!(parsed.command, strings(&["echo", "--full-auto"]));
        assert_eq!(
            parse(&strings(&["macos", "true"])).unwrap().platform,
            Platform::MacOs
        );
        assert_eq!(
            parse(&strings(&["linux", "true"])).unwrap().platform,
            Platform::Linux
        );
    }

    #[test]
    fn rejects_bad_command_lines() {
        for (args, message) in [
            (&[][..], "missing sandbox"),
            (&["windows", "ls"][..], "unknown sandbox `windows`"),
            (&["linux"][..], "missing COMMAND"),
            (&["linux", "--"][..], "missing COMMAND"),
            (&["linux", "-c"][..], "-c needs key=value"),
            (&["linux", "--bogus", "ls"][..], "unknown option `--bogus`"),
        ] {
            let err = parse(&strings(args)).unwrap_err();
            assert!(err.contains(message), "{args:?}: {err}");
        }
    }

    #[test]
    fn wrong_platform_messages() {
        #[cfg(target_os = "linux")]
        assert_eq!(
            check_platform(Platform::MacOs).unwrap_err().to_string(),
            "Seatbelt sandbox is only available on macOS"
        );
        #[cfg(target_os = "macos")]
        assert_eq!(
            check_platform(Platform::Linux).unwrap_err().to_string(),
            "Landlock sandbox is only available on Linux"
        );
    }
}
