//! Entry point: argv dispatch, before any thread or configuration exists.
//!
//! Order: argv[0] `codex-linux-sandbox` (the sandbox helper), argv[0] `apply_patch` /
//! `applypatch`, argv[1] `--codex-run-as-apply-patch`; then the subcommands `app-server`,
//! `sandbox`, `exec` and `demo`, with global `-c/--config key=value` overrides accepted before
//! and after the subcommand. What each subcommand does lives in its own module; the module tree
//! is the library (`src/lib.rs`), which the fuzz targets and examples use too.

use std::ffi::OsString;

use codex_lite::{apply_patch, cli, config, rollout, sandbox, server};

const USAGE: &str = "\
codex-lite: a lightweight Codex app-server

Usage: codex-lite [OPTIONS] <COMMAND>

Commands:
  app-server [--listen stdio://] [--session-source exec]
                                   Serve the app-server protocol (JSON lines) on stdin/stdout;
                                   `exec` records new threads as Codex's exec does (source
                                   `exec`; codex-lite exec runs it so) instead of `vscode`
  demo [--json]                    Show one complete turn offline: a scripted model, the real
                                   app-server, a sandboxed command, a patch, an approval and a
                                   token refresh (see src/cli/demo.rs)
  exec [OPTIONS] [PROMPT]          Run one turn non-interactively (see 'exec --help')
  sandbox linux|macos [--full-auto] [--] COMMAND...
                                   Run a command under the sandbox (read-only by default,
                                   workspace-write with --full-auto); aliases: sandbox landlock,
                                   sandbox seatbelt, debug landlock

Options:
  -c, --config <key=value>  Override a config.toml setting (dotted key, TOML value or plain
                            string); repeatable, before or after the command
  -h, --help                Print help
  -V, --version             Print version

Environment:
  CODEX_HOME   configuration and state directory (default ~/.codex)
  RUST_LOG     stderr log level: error, warn (default), info, debug
  LOG_FORMAT   `json` for JSON log lines
";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Command {
    /// `app-server`, and the `source` its new threads are recorded with.
    AppServer {
        source: &'static str,
    },
    /// `sandbox <platform> …` / `debug landlock …`: the arguments from the platform word on.
    Sandbox(Vec<OsString>),
    /// `exec …`: the arguments after `exec`.
    Exec(Vec<OsString>),
    /// `demo …`: the arguments after `demo`.
    Demo(Vec<OsString>),
    Help,
    Version,
}

/// Parsed command line: the command plus every `-c` override, in order.
#[derive(Debug, PartialEq)]
struct Cli {
    command: Command,
    overrides: Vec<String>,
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let arg0 = args
        .first()
        .and_then(|a| codex_lite::platform::program_name(a))
        .unwrap_or_default();
    match arg0.as_str() {
        // Before anything else: the helper must stay single-threaded.
        sandbox::linux::HELPER_ARG0 => std::process::exit(sandbox::linux::helper_main(&args[1..])),
        _ if apply_patch::is_arg0_name(
            args.first().map(OsString::as_os_str).unwrap_or_default(),
        ) =>
        {
            std::process::exit(apply_patch::main_arg0(args[1..].to_vec()))
        }
        _ => {}
    }
    // A parent that ignored SIGCHLD or blocked signals must not break our commands.
    codex_lite::platform::reset_inherited_signals();
    if args
        .get(1)
        .is_some_and(|a| a == apply_patch::RUN_AS_APPLY_PATCH_ARG)
    {
        std::process::exit(apply_patch::main_run_as(args.get(2).cloned()));
    }
    let cli = match parse_cli(args.get(1..).unwrap_or_default()) {
        Ok(cli) => cli,
        Err(message) => {
            eprintln!(
                "error: {message}\n\nUsage: codex-lite [OPTIONS] <COMMAND>\n\nFor more information, try '--help'."
            );
            std::process::exit(2);
        }
    };
    let code = match cli.command {
        Command::Help => {
            print!("{USAGE}");
            0
        }
        Command::Version => {
            println!("codex-lite {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Command::Sandbox(rest) => sandbox::cli::main(&with_overrides(rest, &cli.overrides)),
        Command::Exec(rest) => cli::exec::main(&cli.overrides, &rest),
        Command::Demo(rest) => cli::demo::main(&cli.overrides, &rest),
        Command::AppServer { source } => match config::load(&cli.overrides) {
            Ok(config) => {
                rollout::set_new_thread_source(source);
                server::run(config)
            }
            Err(e) => {
                eprintln!("codex-lite: {e:#}");
                1
            }
        },
    };
    std::process::exit(code);
}

/// Puts global `-c` overrides right after the sandbox platform word, where the sandbox CLI
/// reads its own.
fn with_overrides(rest: Vec<OsString>, overrides: &[String]) -> Vec<OsString> {
    let mut args = rest.into_iter();
    let mut out: Vec<OsString> = args.next().into_iter().collect();
    for kv in overrides {
        out.push("-c".into());
        out.push(kv.into());
    }
    out.extend(args);
    out
}

fn parse_cli(args: &[OsString]) -> Result<Cli, String> {
    let mut overrides = Vec::new();
    let mut command = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let arg = arg
            .to_str()
            .ok_or_else(|| format!("argument {arg:?} is not valid UTF-8"))?;
        if let Some(value) = config_flag(arg, &mut iter)? {
            overrides.push(value);
            continue;
        }
        match (arg, &command) {
            ("-h" | "--help", _) => {
                return Ok(Cli {
                    command: Command::Help,
                    overrides,
                });
            }
            ("-V" | "--version", None) => {
                return Ok(Cli {
                    command: Command::Version,
                    overrides,
                });
            }
            ("app-server", None) => {
                command = Some(Command::AppServer {
                    source: rollout::APP_SERVER_SOURCE,
                })
            }
            ("sandbox", None) => {
                let rest = iter.cloned().collect();
                return Ok(Cli {
                    command: Command::Sandbox(rest),
                    overrides,
                });
            }
            ("exec", None) => {
                let rest = iter.cloned().collect();
                return Ok(Cli {
                    command: Command::Exec(rest),
                    overrides,
                });
            }
            ("demo", None) => {
                let rest = iter.cloned().collect();
                return Ok(Cli {
                    command: Command::Demo(rest),
                    overrides,
                });
            }
            ("debug", None) => {
                let rest: Vec<OsString> = iter.cloned().collect();
                if rest.first().is_some_and(|w| w == "landlock") {
                    return Ok(Cli {
                        command: Command::Sandbox(rest),
                        overrides,
                    });
                }
                return Err("unrecognized subcommand 'debug' (only 'debug landlock')".to_string());
            }
            ("--session-source", Some(Command::AppServer { .. })) => {
                let source = match iter.next().and_then(|u| u.to_str()) {
                    Some("vscode") => rollout::APP_SERVER_SOURCE,
                    Some("exec") => rollout::EXEC_SOURCE,
                    _ => return Err("'--session-source' takes 'vscode' or 'exec'".to_string()),
                };
                command = Some(Command::AppServer { source });
            }
            ("--listen", Some(Command::AppServer { .. })) => {
                let url = iter
                    .next()
                    .and_then(|u| u.to_str())
                    .ok_or("a value is required for '--listen <URL>'")?;
                check_listen(url)?;
            }
            (_, Some(Command::AppServer { .. })) if arg.starts_with("--listen=") => {
                check_listen(&arg["--listen=".len()..])?;
            }
            (_, _) if arg.starts_with('-') => {
                return Err(format!("unexpected argument '{arg}' found"));
            }
            (_, None) => return Err(format!("unrecognized subcommand '{arg}'")),
            (_, Some(_)) => return Err(format!("unexpected argument '{arg}' found")),
        }
    }
    let command = command.ok_or("a command is required (try 'app-server')")?;
    Ok(Cli { command, overrides })
}

/// Recognises `-c k=v`, `--config k=v` and `--config=k=v`; returns the override, if any.
fn config_flag<'a>(
    arg: &str,
    rest: &mut impl Iterator<Item = &'a OsString>,
) -> Result<Option<String>, String> {
    if arg == "-c" || arg == "--config" {
        let value = rest
            .next()
            .and_then(|v| v.to_str())
            .ok_or("a value is required for '--config <key=value>'")?;
        return Ok(Some(value.to_string()));
    }
    Ok(arg.strip_prefix("--config=").map(str::to_string))
}

fn check_listen(url: &str) -> Result<(), String> {
    if url == "stdio://" {
        Ok(())
    } else {
        Err(format!(
            "unsupported --listen URL '{url}': only stdio:// is supported"
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse_cli(&args)
    }

    #[test]
    fn command_lines() {
        const APP_SERVER: Command = Command::AppServer {
            source: rollout::APP_SERVER_SOURCE,
        };
        let ok: &[(&[&str], Command, &[&str])] = &[
            (
                &["app-server", "--session-source", "exec"],
                Command::AppServer { source: "exec" },
                &[],
            ),
            (&["app-server"], APP_SERVER, &[]),
            (&["app-server", "--listen", "stdio://"], APP_SERVER, &[]),
            (&["app-server", "--listen=stdio://"], APP_SERVER, &[]),
            (
                &[
                    "--config",
                    "a=1",
                    "app-server",
                    "-c",
                    "b=2",
                    "--listen",
                    "stdio://",
                    "--config=c=3",
                ],
                APP_SERVER,
                &["a=1", "b=2", "c=3"],
            ),
            (&["--help"], Command::Help, &[]),
            (&["app-server", "-h"], Command::Help, &[]),
            (&["--version"], Command::Version, &[]),
            (&["-V"], Command::Version, &[]),
            (
                &["-c", "a=1", "exec", "--json", "hi"],
                Command::Exec(vec!["--json".into(), "hi".into()]),
                &["a=1"],
            ),
            (&["demo"], Command::Demo(vec![]), &[]),
        ];
        for (args, command, overrides) in ok {
            let cli = parse(args).unwrap();
            assert_eq!(cli.command, *command, "{args:?}");
            assert_eq!(cli.overrides, *overrides, "{args:?}");
        }
        let bad: &[(&[&str], &str)] = &[
            (&[], "a command is required"),
            (&["--bogus"], "unexpected argument '--bogus'"),
            (&["app-server", "--bogus"], "unexpected argument '--bogus'"),
            (&["serve"], "unrecognized subcommand 'serve'"),
            (
                &["app-server", "--listen", "ws://127.0.0.1:1"],
                "only stdio://",
            ),
            (&["app-server", "--listen"], "a value is required"),
            (
                &["app-server", "--session-source", "cli"],
                "takes 'vscode' or 'exec'",
            ),
            (&["--session-source", "exec"], "unexpected argument"),
            (&["-c"], "a value is required"),
            (&["app-server", "extra"], "unexpected argument 'extra'"),
        ];
        for (args, needle) in bad {
            let err = parse(args).unwrap_err();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }
}
