//! `codex-lite exec`: one agent turn from the command line, the way the TypeScript SDK
//! (`@openai/codex-sdk`) drives the reference's `codex exec --experimental-json` (interop.md
//! §2). It checks its inputs, spawns our own binary as `app-server` (see `cli/mod.rs` for why a
//! child), starts or resumes a thread, runs one turn and prints it: JSON events on stdout with
//! `--json`, else readable progress on stderr and the final message on stdout. Exit status 0
//! when the turn completed, 1 when it failed or could not start, 2 for a bad command line.
//!
//! The child gets the same `-c` overrides and environment, and `--session-source exec` (its
//! threads are recorded with source `exec`, as Codex's exec records them). Two exec-specific
//! rules are put to it as plain protocol or config: approvals default to `never` (nobody is there to answer;
//! a request that comes anyway is declined), and `CODEX_API_KEY`, when set, becomes the
//! built-in provider's bearer (`model_providers.openai.env_key`) without touching auth.json.
//! The originator is `codex_exec`, or `CODEX_INTERNAL_ORIGINATOR_OVERRIDE` (the SDK sets
//! `codex_sdk_ts`): it is the `clientInfo.name` of the handshake.

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use super::client::{AppServerChild, Message, Spawn};
use super::exec_args::{self, ExecArgs, Parsed, Target};
use super::exec_events::EventMapper;
use super::render;

/// The originator (and `clientInfo.name`) when no override is set.
const DEFAULT_ORIGINATOR: &str = "codex_exec";
/// Environment variable that replaces the originator (set by the TypeScript SDK).
const ORIGINATOR_ENV: &str = "CODEX_INTERNAL_ORIGINATOR_OVERRIDE";
/// Environment variable holding an API key for the built-in OpenAI provider.
const API_KEY_ENV: &str = "CODEX_API_KEY";
/// How long the app-server gets to answer the handshake and thread requests.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the app-server gets to exit once its stdin is closed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Notifications exec never shows (streaming deltas; the completed items carry the text).
const OPTED_OUT: &[&str] = &[
    "item/agentMessage/delta",
    "item/reasoning/summaryTextDelta",
    "item/reasoning/textDelta",
    "item/commandExecution/outputDelta",
    "item/fileChange/outputDelta",
];

/// Runs `exec` with the arguments after the word `exec`; `global` are the `-c` overrides given
/// before it. Returns the process exit status.
pub fn main(global: &[String], args: &[OsString]) -> i32 {
    let args = match exec_args::parse(global, args) {
        Ok(Parsed::Help) => {
            print!("{}", exec_args::USAGE);
            return 0;
        }
        Ok(Parsed::Run(args)) => *args,
        Err(message) => {
            eprintln!(
                "error: {message}\n\nUsage: codex-lite exec [OPTIONS] [PROMPT]\n\nFor more information, try 'codex-lite exec --help'."
            );
            return 2;
        }
    };
    match run(&args) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("codex-lite exec: {e:#}");
            1
        }
    }
}

/// What was checked and read before the server starts.
struct Inputs {
    cwd: PathBuf,
    prompt: String,
    images: Vec<PathBuf>,
    output_schema: Option<Value>,
    writable_roots: Option<Vec<String>>,
}

/// Checks every input the user gave, so that a mistake fails before anything runs.
fn gather_inputs(args: &ExecArgs) -> Result<Inputs> {
    let here = std::env::current_dir().context("reading the current directory")?;
    let cwd = match &args.cd {
        Some(dir) => here
            .join(dir)
            .canonicalize()
            .with_context(|| format!("cannot use --cd {}", dir.display()))?,
        None => here.clone(),
    };
    if !args.skip_git_repo_check && !is_inside_git_repo(&cwd) {
        bail!(
            "{} is not inside a Git repository; pass --skip-git-repo-check to run here anyway",
            cwd.display()
        );
    }
    let mut images = Vec::new();
    for image in &args.images {
        let path = here.join(image);
        let readable = std::fs::File::open(&path).and_then(|f| f.metadata());
        match readable {
            Ok(meta) if meta.is_file() => images.push(path),
            Ok(_) => bail!("cannot read image {}: not a regular file", image.display()),
            Err(e) => bail!("cannot read image {}: {e}", image.display()),
        }
    }
    let output_schema = match &args.output_schema {
        None => None,
        Some(file) => {
            let text = std::fs::read_to_string(here.join(file))
                .with_context(|| format!("cannot read output schema {}", file.display()))?;
            let schema: Value = serde_json::from_str(&text)
                .with_context(|| format!("output schema {} is not valid JSON", file.display()))?;
            if !schema.is_object() {
                bail!("output schema {} must be a JSON object", file.display());
            }
            Some(schema)
        }
    };
    let writable_roots = if args.add_dirs.is_empty() {
        None
    } else {
        // Added to the configured roots, as the reference does.
        let config = crate::config::load(&args.overrides)?;
        let mut roots: Vec<String> = config
            .sandbox_workspace_write
            .writable_roots
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        for dir in &args.add_dirs {
            let dir = here
                .join(dir)
                .canonicalize()
                .with_context(|| format!("cannot use --add-dir {}", dir.display()))?;
            roots.push(dir.display().to_string());
        }
        Some(roots)
    };
    let prompt = read_prompt(args.prompt.as_deref())?;
    Ok(Inputs {
        cwd,
        prompt,
        images,
        output_schema,
        writable_roots,
    })
}

/// The prompt argument, or stdin when it is absent or `-`. Never waits on a terminal.
fn read_prompt(arg: Option<&str>) -> Result<String> {
    let prompt = match arg {
        Some(text) if text != "-" => text.to_string(),
        _ => {
            let mut stdin = std::io::stdin();
            if stdin.is_terminal() {
                bail!("no prompt: give it as an argument or pipe it on stdin");
            }
            let mut text = String::new();
            stdin
                .read_to_string(&mut text)
                .context("reading the prompt from stdin")?;
            text
        }
    };
    if prompt.trim().is_empty() {
        bail!("no prompt: the prompt is empty (give it as an argument or pipe it on stdin)");
    }
    Ok(prompt)
}

/// Whether `dir` or one of its ancestors has a `.git` (directory, or worktree pointer file).
fn is_inside_git_repo(dir: &Path) -> bool {
    dir.ancestors().any(|d| d.join(".git").exists())
}

/// Whether the user chose an approval policy with `-c approval_policy=…`.
fn sets_approval_policy(overrides: &[String]) -> bool {
    overrides.iter().any(|o| {
        o.split_once('=')
            .is_some_and(|(k, _)| k.trim() == "approval_policy")
    })
}

/// The child's command line: the user's overrides (and the API key rule), then `app-server`.
fn child_args(args: &ExecArgs) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    for kv in &args.overrides {
        out.push("-c".into());
        out.push(kv.into());
    }
    if std::env::var(API_KEY_ENV).is_ok_and(|k| !k.trim().is_empty()) {
        // The built-in provider then sends `CODEX_API_KEY` as its bearer to openai_base_url:
        // the same requests as an API-key login, with nothing written to auth.json.
        for kv in [
            "model_providers.openai.requires_openai_auth=false".to_string(),
            format!("model_providers.openai.env_key=\"{API_KEY_ENV}\""),
        ] {
            out.push("-c".into());
            out.push(kv.into());
        }
    }
    // Our threads are then recorded as Codex records its exec threads: source `exec`.
    out.extend(["app-server", "--session-source", "exec"].map(OsString::from));
    out
}

/// Parameters shared by thread/start and thread/resume.
fn thread_params(args: &ExecArgs, inputs: &Inputs, new_thread: bool) -> Value {
    let mut params = json!({});
    if new_thread || args.cd.is_some() {
        params["cwd"] = json!(inputs.cwd.display().to_string());
    }
    if let Some(model) = &args.model {
        params["model"] = json!(model);
    }
    if args.bypass {
        params["sandbox"] = json!("danger-full-access");
    } else if let Some(mode) = &args.sandbox {
        params["sandbox"] = json!(mode);
    }
    if args.bypass || !sets_approval_policy(&args.overrides) {
        params["approvalPolicy"] = json!("never");
    }
    if let Some(roots) = &inputs.writable_roots {
        params["config"] = json!({"sandbox_workspace_write.writable_roots": roots});
    }
    if new_thread {
        if args.ephemeral {
            params["ephemeral"] = json!(true);
        }
        if let Some(source) = &args.thread_source {
            params["threadSource"] = json!(source);
        }
    }
    params
}

/// Starts, resumes or finds the thread; returns the thread/start|resume result.
fn open_thread(server: &mut AppServerChild, args: &ExecArgs, inputs: &Inputs) -> Result<Value> {
    let id = match &args.target {
        Target::New => {
            let params = thread_params(args, inputs, true);
            return server
                .request("thread/start", params, Some(SETUP_TIMEOUT))?
                .map_err(|e| anyhow!("cannot start a thread: {}", e.message));
        }
        Target::Resume(id) => id.clone(),
        Target::Last { all } => {
            // Exec threads are listed only when asked for (as in Codex): the last of ours, the
            // app-server's and Codex's own.
            let mut params =
                json!({"limit": 1, "sourceKinds": ["cli", "vscode", "exec", "appServer"]});
            if !all {
                params["cwd"] = json!(inputs.cwd.display().to_string());
            }
            let list = server
                .request("thread/list", params, Some(SETUP_TIMEOUT))?
                .map_err(|e| anyhow!("cannot list threads: {}", e.message))?;
            match list.pointer("/data/0/id").and_then(Value::as_str) {
                Some(id) => id.to_string(),
                None if *all => bail!("no thread to resume"),
                None => bail!(
                    "no thread to resume in {} (--all looks everywhere)",
                    inputs.cwd.display()
                ),
            }
        }
    };
    let mut params = thread_params(args, inputs, false);
    params["threadId"] = json!(id);
    server
        .request("thread/resume", params, Some(SETUP_TIMEOUT))?
        .map_err(|e| anyhow!("cannot resume thread {id}: {}", e.message))
}

/// How the turn is shown.
struct Output {
    json: bool,
}

impl Output {
    fn event(&self, event: &Value) {
        if self.json {
            render::print_line(&event.to_string());
        } else {
            for line in render::event_lines(event) {
                eprintln!("{line}");
            }
        }
    }

    fn note(&self, text: &str) {
        if !self.json {
            eprintln!("{text}");
        }
    }
}

fn run(args: &ExecArgs) -> Result<bool> {
    for ignored in &args.ignored {
        eprintln!("warning: ignoring {ignored}");
    }
    let inputs = gather_inputs(args)?;
    let out = Output { json: args.json };
    let mut server = AppServerChild::spawn(Spawn::own_binary(child_args(args))?)?;
    let originator = std::env::var(ORIGINATOR_ENV)
        .ok()
        .filter(|o| !o.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ORIGINATOR.to_string());
    server
        .request(
            "initialize",
            json!({
                "clientInfo": {"name": originator, "title": "codex-lite exec", "version": env!("CARGO_PKG_VERSION")},
                "capabilities": {"optOutNotificationMethods": OPTED_OUT},
            }),
            Some(SETUP_TIMEOUT),
        )?
        .map_err(|e| anyhow!("the app-server refused the handshake: {}", e.message))?;
    server.notify("initialized", None)?;
    let thread = open_thread(&mut server, args, &inputs)?;
    let thread_id = thread
        .pointer("/thread/id")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the app-server's thread has no id"))?
        .to_string();
    if args.json {
        out.event(&json!({"type": "thread.started", "thread_id": thread_id}));
    } else {
        print_header(&thread, &thread_id, &inputs);
    }
    let mut input: Vec<Value> = inputs
        .images
        .iter()
        .map(|p| json!({"type": "localImage", "path": p.display().to_string()}))
        .collect();
    input.push(json!({"type": "text", "text": inputs.prompt}));
    let mut params = json!({"threadId": thread_id, "input": input});
    if let Some(schema) = &inputs.output_schema {
        params["outputSchema"] = schema.clone();
    }
    let turn = server
        .request("turn/start", params, Some(SETUP_TIMEOUT))?
        .map_err(|e| anyhow!("cannot start the turn: {}", e.message))?;
    let turn_id = turn
        .pointer("/turn/id")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the app-server's turn has no id"))?
        .to_string();
    let mut mapper = EventMapper::default();
    while mapper.outcome.is_none() {
        match server.next(None)? {
            Some(Message::Notification { method, params }) => {
                for event in mapper.on_notification(&method, &params, &turn_id) {
                    out.event(&event);
                }
            }
            Some(Message::Request { id, method, params }) => {
                answer_server_request(&mut server, &out, &id, &method, &params)?;
            }
            None => {}
        }
    }
    let status = server.finish(SHUTDOWN_TIMEOUT);
    if !status.is_some_and(|s| s.success()) {
        crate::log::warn(&format!("the app-server exited with {status:?}"));
    }
    if let Some(file) = &args.output_last_message {
        let text = mapper.last_message.as_deref().unwrap_or_default();
        std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))?;
    }
    if !args.json
        && let Some(message) = &mapper.last_message
    {
        render::print_line(message);
    }
    Ok(mapper.outcome == Some(true))
}

fn print_header(thread: &Value, thread_id: &str, inputs: &Inputs) {
    let text = |p: &str| thread.pointer(p).and_then(Value::as_str).unwrap_or("?");
    eprintln!(
        "codex-lite exec {} · thread {thread_id}",
        env!("CARGO_PKG_VERSION")
    );
    eprintln!(
        "model {} ({}) · cwd {} · sandbox {} · approvals {}",
        text("/model"),
        text("/modelProvider"),
        text("/cwd"),
        match text("/sandbox/type") {
            "readOnly" => "read-only",
            "workspaceWrite" => "workspace-write",
            "dangerFullAccess" => "danger-full-access",
            other => other,
        },
        text("/approvalPolicy"),
    );
    for image in &inputs.images {
        eprintln!("image: {}", image.display());
    }
    for line in render::labelled("user", &inputs.prompt) {
        eprintln!("{line}");
    }
}

/// Nobody can answer an approval during `exec`: it is declined (and said so). Anything else
/// the server asks is not something exec does.
fn answer_server_request(
    server: &mut AppServerChild,
    out: &Output,
    id: &Value,
    method: &str,
    params: &Value,
) -> Result<()> {
    match method {
        "item/commandExecution/requestApproval" | "item/fileChange/requestApproval" => {
            let what = params["command"]
                .as_str()
                .or(params["reason"].as_str())
                .unwrap_or("a file change");
            out.note(&format!(
                "approval requested ({what}): declined, exec cannot ask anyone"
            ));
            server.respond(id, json!({"decision": "decline"}))
        }
        _ => server.respond_error(
            id,
            crate::rpc::METHOD_NOT_FOUND,
            &format!("codex-lite exec does not handle {method}"),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn approval_policy_overrides() {
        let cases: &[(&[&str], bool)] = &[
            (&[], false),
            (&["approval_policy=\"on-request\""], true),
            (&[" approval_policy = never"], true),
            (&["approval_policy_x=1", "model=m"], false),
        ];
        for (overrides, want) in cases {
            let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
            assert_eq!(sets_approval_policy(&overrides), *want, "{overrides:?}");
        }
    }

    #[test]
    fn git_repo_detection() {
        let base = std::env::temp_dir().join(format!("exec-git-{}", std::process::id()));
        let inner = base.join("a/b");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::write(base.join(".git"), "gitdir: elsewhere\n").unwrap();
        let inside = is_inside_git_repo(&inner);
        std::fs::remove_dir_all(&base).unwrap();
        assert!(inside);
    }
}
