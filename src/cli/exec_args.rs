//! The command line of `codex-lite exec`: the flags the TypeScript SDK passes (and the rest of
//! the reference's that we honour), `resume <id>` / `resume --last`, and the prompt. Pure
//! parsing; what the flags do is `exec.rs`'s.

use std::ffi::OsString;
use std::path::PathBuf;

/// Which thread the turn runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A new thread.
    New,
    /// `resume <id>`.
    Resume(String),
    /// `resume --last` (`all`: any directory, not only the current one).
    Last {
        /// `--all`: do not filter by working directory.
        all: bool,
    },
}

/// Everything `exec` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecArgs {
    /// `-c key=value` overrides, global ones first.
    pub overrides: Vec<String>,
    /// `--json` / `--experimental-json`: JSON events on stdout.
    pub json: bool,
    /// `-m/--model`.
    pub model: Option<String>,
    /// `-s/--sandbox`: `read-only`, `workspace-write` or `danger-full-access`.
    pub sandbox: Option<String>,
    /// `-C/--cd`.
    pub cd: Option<PathBuf>,
    /// `--add-dir` (repeatable): extra writable roots.
    pub add_dirs: Vec<PathBuf>,
    /// `--skip-git-repo-check`.
    pub skip_git_repo_check: bool,
    /// `--output-schema FILE`.
    pub output_schema: Option<PathBuf>,
    /// `-i/--image FILE` (repeatable).
    pub images: Vec<PathBuf>,
    /// `-o/--output-last-message FILE`.
    pub output_last_message: Option<PathBuf>,
    /// `--ephemeral`: no rollout file.
    pub ephemeral: bool,
    /// `--thread-source`: passed to thread/start as `threadSource`.
    pub thread_source: Option<String>,
    /// `--dangerously-bypass-approvals-and-sandbox` (`--yolo`).
    pub bypass: bool,
    /// Flags accepted for compatibility that change nothing here, to warn about.
    pub ignored: Vec<String>,
    /// New thread or resume.
    pub target: Target,
    /// The prompt argument; `None` or `-` means stdin.
    pub prompt: Option<String>,
}

/// Reference flags we refuse by name rather than as unknown.
const UNSUPPORTED: &[&str] = &[
    "--oss",
    "--local-provider",
    "-p",
    "--profile",
    "--enable",
    "--disable",
    "--strict-config",
    "--approve-for-me",
    "--dangerously-bypass-hook-trust",
    "--worktree",
    "--trust",
    "--ignore-user-config",
    "--ignore-rules",
    "--full-auto",
];

/// Help for `codex-lite exec --help`.
pub const USAGE: &str = "\
Run one agent turn non-interactively (the command line the TypeScript SDK drives)

Usage: codex-lite exec [OPTIONS] [PROMPT]
       codex-lite exec [OPTIONS] resume <THREAD_ID | --last [--all]> [PROMPT]

The prompt comes from PROMPT, or from stdin when PROMPT is absent or `-`.

Options:
  -c, --config <key=value>          Override a config.toml setting (repeatable)
  -m, --model <MODEL>               Model to use
  -s, --sandbox <MODE>              read-only, workspace-write or danger-full-access
  -C, --cd <DIR>                    Working directory of the agent
      --add-dir <DIR>               Another writable directory (repeatable)
  -i, --image <FILE>                Attach an image to the prompt (repeatable)
      --output-schema <FILE>        JSON Schema the final message must follow
  -o, --output-last-message <FILE>  Also write the final message to FILE
      --json, --experimental-json   Print JSON events on stdout, one per line
      --skip-git-repo-check         Run outside a Git repository
      --ephemeral                   Do not save the thread
      --dangerously-bypass-approvals-and-sandbox
                                    Run commands without sandbox or approvals
  -h, --help                        Print help

Approvals default to `never` (nobody can answer them); with `-c approval_policy=...` a
request for approval is declined. Exit status: 0 when the turn completed, 1 otherwise.
CODEX_API_KEY, when set, is the API key of the built-in OpenAI provider.
";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Run.
    Run(Box<ExecArgs>),
    /// `--help`.
    Help,
}

/// Parses the arguments after `exec`; `global` are the `-c` overrides given before it.
pub fn parse(global: &[String], args: &[OsString]) -> Result<Parsed, String> {
    let mut out = ExecArgs {
        overrides: global.to_vec(),
        json: false,
        model: None,
        sandbox: None,
        cd: None,
        add_dirs: Vec::new(),
        skip_git_repo_check: false,
        output_schema: None,
        images: Vec::new(),
        output_last_message: None,
        ephemeral: false,
        thread_source: None,
        bypass: false,
        ignored: Vec::new(),
        target: Target::New,
        prompt: None,
    };
    let mut positionals: Vec<String> = Vec::new();
    let mut last = false;
    let mut all = false;
    let mut only_positionals = false;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let arg = arg
            .to_str()
            .ok_or_else(|| format!("argument {arg:?} is not valid UTF-8"))?;
        if only_positionals || !arg.starts_with('-') || arg == "-" {
            positionals.push(arg.to_string());
            continue;
        }
        if arg == "--" {
            only_positionals = true;
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
            _ => (arg, None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => iter
                    .next()
                    .and_then(|v| v.to_str())
                    .map(str::to_string)
                    .ok_or_else(|| format!("a value is required for '{name}'")),
            }
        };
        match flag {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-c" | "--config" => out.overrides.push(value("--config <key=value>")?),
            "--json" | "--experimental-json" => out.json = true,
            "-m" | "--model" => out.model = Some(value("--model <MODEL>")?),
            "-s" | "--sandbox" => {
                let mode = value("--sandbox <MODE>")?;
                if !["read-only", "workspace-write", "danger-full-access"].contains(&&*mode) {
                    return Err(format!(
                        "invalid value '{mode}' for '--sandbox': expected read-only, workspace-write or danger-full-access"
                    ));
                }
                out.sandbox = Some(mode);
            }
            "-C" | "--cd" => out.cd = Some(value("--cd <DIR>")?.into()),
            "--add-dir" => out.add_dirs.push(value("--add-dir <DIR>")?.into()),
            "--skip-git-repo-check" => out.skip_git_repo_check = true,
            "--output-schema" => out.output_schema = Some(value("--output-schema <FILE>")?.into()),
            "-i" | "--image" => out.images.push(value("--image <FILE>")?.into()),
            "-o" | "--output-last-message" => {
                out.output_last_message = Some(value("--output-last-message <FILE>")?.into());
            }
            "--ephemeral" => out.ephemeral = true,
            "--thread-source" => out.thread_source = Some(value("--thread-source <SOURCE>")?),
            "--dangerously-bypass-approvals-and-sandbox" | "--yolo" => out.bypass = true,
            "--last" => last = true,
            "--all" => all = true,
            "--color" => {
                let color = value("--color <COLOR>")?;
                if color == "always" {
                    out.ignored
                        .push("--color always (output is never colored)".into());
                }
            }
            "--cyber-access-program" => {
                let program = value("--cyber-access-program <PROGRAM>")?;
                out.ignored
                    .push(format!("--cyber-access-program {program} (not supported)"));
            }
            f if UNSUPPORTED.contains(&f) => {
                return Err(format!("'{f}' is not supported by codex-lite exec"));
            }
            _ => return Err(format!("unexpected argument '{arg}' found")),
        }
    }
    let mut positionals = positionals.into_iter();
    let first = positionals.next();
    if first.as_deref() == Some("resume") {
        out.target =
            if last {
                Target::Last { all }
            } else {
                Target::Resume(positionals.next().ok_or(
                    "'exec resume' needs a thread id (or --last for the most recent thread)",
                )?)
            };
        out.prompt = positionals.next();
    } else if matches!(first.as_deref(), Some("fork" | "review")) {
        return Err(format!(
            "'exec {}' is not supported by codex-lite",
            first.unwrap_or_default()
        ));
    } else {
        if last || all {
            return Err("'--last' and '--all' only go with 'exec resume'".into());
        }
        out.prompt = first;
    }
    if let Some(extra) = positionals.next() {
        return Err(format!("unexpected argument '{extra}' found"));
    }
    Ok(Parsed::Run(Box::new(out)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<ExecArgs, String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        match parse(&["g=1".to_string()], &args)? {
            Parsed::Run(a) => Ok(*a),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn the_typescript_sdk_command_line() {
        // Exactly what @openai/codex-sdk 0.163 spawns for a resumed thread with every option.
        let a = run(&[
            "--experimental-json",
            "--config",
            "x=1",
            "--config",
            "openai_base_url=\"http://127.0.0.1:1/v1\"",
            "--model",
            "gpt-5.1-codex",
            "--thread-source",
            "sdk",
            "--sandbox",
            "workspace-write",
            "--cd",
            "/w",
            "--add-dir",
            "/a",
            "--add-dir",
            "/b",
            "--skip-git-repo-check",
            "--output-schema",
            "/s.json",
            "--config",
            "model_reasoning_effort=\"high\"",
            "--config",
            "approval_policy=\"never\"",
            "resume",
            "0199-id",
            "--image",
            "/i.png",
            "--image",
            "/j.png",
        ])
        .unwrap();
        assert!(a.json);
        assert_eq!(
            a.overrides,
            [
                "g=1",
                "x=1",
                "openai_base_url=\"http://127.0.0.1:1/v1\"",
                "model_reasoning_effort=\"high\"",
                "approval_policy=\"never\""
            ]
        );
        assert_eq!(a.model.as_deref(), Some("gpt-5.1-codex"));
        assert_eq!(a.thread_source.as_deref(), Some("sdk"));
        assert_eq!(a.sandbox.as_deref(), Some("workspace-write"));
        assert_eq!(a.cd, Some(PathBuf::from("/w")));
        assert_eq!(a.add_dirs, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert!(a.skip_git_repo_check);
        assert_eq!(a.output_schema, Some(PathBuf::from("/s.json")));
        assert_eq!(a.images, [PathBuf::from("/i.png"), PathBuf::from("/j.png")]);
        assert_eq!(a.target, Target::Resume("0199-id".into()));
        assert_eq!(a.prompt, None);
    }

    #[test]
    fn forms() {
        let cases: &[(&[&str], Target, Option<&str>)] = &[
            (&["hello"], Target::New, Some("hello")),
            (&["-"], Target::New, Some("-")),
            (&[], Target::New, None),
            (
                &["--json", "--", "--not-a-flag"],
                Target::New,
                Some("--not-a-flag"),
            ),
            (
                &["resume", "id", "again"],
                Target::Resume("id".into()),
                Some("again"),
            ),
            (&["resume", "--last"], Target::Last { all: false }, None),
            (
                &["resume", "--last", "--all", "p"],
                Target::Last { all: true },
                Some("p"),
            ),
        ];
        for (args, target, prompt) in cases {
            let a = run(args).unwrap();
            assert_eq!(&a.target, target, "{args:?}");
            assert_eq!(a.prompt.as_deref(), *prompt, "{args:?}");
        }
        let a = run(&["-m=x", "--model=y", "-o", "/o", "--color", "always", "p"]);
        // `-m=x` is not a long flag with an inline value.
        assert!(a.is_err());
        let a = run(&[
            "--model=y",
            "-o",
            "/o",
            "--color",
            "always",
            "--yolo",
            "--ephemeral",
            "p",
        ])
        .unwrap();
        assert_eq!(a.model.as_deref(), Some("y"));
        assert_eq!(a.output_last_message, Some(PathBuf::from("/o")));
        assert_eq!(a.ignored.len(), 1);
        assert!(a.bypass && a.ephemeral);
        assert_eq!(run(&["--help"]).unwrap_err(), "help");
    }

    #[test]
    fn errors() {
        let cases: &[(&[&str], &str)] = &[
            (&["--bogus"], "unexpected argument '--bogus'"),
            (&["--oss"], "'--oss' is not supported"),
            (&["--sandbox", "open"], "invalid value 'open'"),
            (&["--model"], "a value is required for '--model"),
            (&["resume"], "needs a thread id"),
            (&["fork", "id"], "'exec fork' is not supported"),
            (&["--last", "p"], "only go with 'exec resume'"),
            (&["a", "b"], "unexpected argument 'b'"),
            (&["resume", "id", "p", "q"], "unexpected argument 'q'"),
        ];
        for (args, needle) in cases {
            let err = run(args).unwrap_err();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }
}
