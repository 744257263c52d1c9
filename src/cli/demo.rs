//! `codex-lite demo`: one complete turn, offline, with no account. It is also the reference
//! example of an embedding app, so read it top to bottom as one: an app that owns its user's
//! ChatGPT login spawns `codex-lite app-server`, hands it the tokens, starts a thread and a
//! turn, and serves what the server asks while the turn runs — a token refresh after a 401,
//! and an approval. The model is `demo_model.rs`, a scripted server on 127.0.0.1 playing the
//! ChatGPT backend; everything else is the real product. `--json` prints the raw protocol
//! lines (`→` app to server, `←` server to app) instead of the readable account.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use serde_json::{Value, json};

use super::client::{AppServerChild, Direction, Message, Spawn};
use super::demo_model::{self, GREETING_AFTER, GREETING_BEFORE, GREETING_FILE, NOTE_FILE};
use super::exec_events::EventMapper;
use super::render;

/// The ChatGPT account the app's tokens belong to.
const ACCOUNT_ID: &str = "demo-account";
/// What the user asks.
const PROMPT: &str = "Fix the greeting in greeting.txt, then leave a note beside the workspace.";
/// How long a request of the setup may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the whole turn may take.
const TURN_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the server gets to exit after its stdin closes.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the demo with the arguments after `demo`; `overrides` are global `-c` flags, passed on
/// to the app-server. Returns the exit status: 0 when the turn completed and did its work.
pub fn main(overrides: &[String], args: &[OsString]) -> i32 {
    let raw = match args
        .iter()
        .map(|a| a.to_str())
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => false,
        [Some("--json")] => true,
        [Some("-h" | "--help")] => {
            render::print_line(HELP);
            return 0;
        }
        _ => {
            eprintln!("error: unexpected arguments to 'demo'\n\nUsage: codex-lite demo [--json]");
            return 2;
        }
    };
    match run(overrides, raw) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            1
        }
    }
}

/// `demo --help`.
const HELP: &str = "Usage: codex-lite demo [--json]

Runs one agent turn offline: a scripted model on 127.0.0.1, the real app-server spawned as
an app would spawn it, a command in the sandbox, an apply_patch edit, an approval and a
ChatGPT token refresh. --json shows the raw protocol lines instead.";

fn run(overrides: &[String], raw: bool) -> Result<()> {
    let out = Show { raw };
    let scratch = Scratch::create()?;
    let workspace = scratch.0.join("workspace");
    std::fs::write(workspace.join(GREETING_FILE), GREETING_BEFORE)?;

    // The app owns the user's ChatGPT login. Here, two made-up tokens: the first has expired
    // (the scripted model answers it with 401), the second is what a refresh would return.
    let expired_token = fake_access_token("expired");
    let fresh_token = fake_access_token("fresh");
    let (notes_tx, notes) = crossbeam_channel::bounded(16);
    let model = demo_model::start(notes_tx, expired_token.clone())?;
    let backend = format!("http://127.0.0.1:{}/backend-api", model.port);

    // Spawn the server as any embedder does: `codex-lite [-c key=value]... app-server`, with
    // its own CODEX_HOME. The sandbox may write in the workspace only (not in /tmp, where the
    // scratch directory lives, so that a write beside the workspace is refused).
    let mut args: Vec<OsString> = Vec::new();
    let demo_overrides = [
        format!("chatgpt_base_url=\"{backend}\""),
        "sandbox_workspace_write.exclude_slash_tmp=true".to_string(),
        "sandbox_workspace_write.exclude_tmpdir_env_var=true".to_string(),
    ];
    for kv in overrides.iter().chain(&demo_overrides) {
        args.extend(["-c".into(), kv.into()]);
    }
    args.push("app-server".into());
    let mut spawn = Spawn::own_binary(args)?;
    spawn
        .env
        .push(("CODEX_HOME".into(), scratch.0.join("home").into()));
    let program = spawn.program.clone();
    let mut server = AppServerChild::spawn(spawn)?;
    if raw {
        server.set_tap(Box::new(|direction, line| match direction {
            Direction::ToServer => render::print_line(&format!("→ {line}")),
            Direction::FromServer => render::print_line(&format!("← {line}")),
        }));
    }
    out.say(format!(
        "codex-lite demo: an app embedding codex-lite, offline (no account, no network)\n  \
         app-server  {} app-server (pid {})\n  model       {backend} (scripted)\n  \
         workspace   {}\n",
        program.display(),
        server.pid(),
        workspace.display()
    ));

    // 1. The handshake. `clientInfo.name` becomes the `originator` of every model request.
    let init = call(
        &mut server,
        "initialize",
        json!({"clientInfo": {"name": "codex_lite_demo", "title": "codex-lite demo",
            "version": env!("CARGO_PKG_VERSION")}}),
    )?;
    server.notify("initialized", None)?;
    out.step(
        "→ initialize",
        &format!("← {}", init["userAgent"].as_str().unwrap_or("?")),
    );

    // 2. Hand over the tokens. The server keeps them in memory only and never writes them.
    call(
        &mut server,
        "account/login/start",
        json!({"type": "chatgptAuthTokens", "accessToken": expired_token,
            "chatgptAccountId": ACCOUNT_ID, "chatgptPlanType": "plus"}),
    )?;
    out.step(
        "→ account/login/start",
        &format!("ChatGPT tokens owned by the app, account {ACCOUNT_ID}"),
    );
    let updated = wait_for(&mut server, "account/updated")?;
    out.step(
        "← account/updated",
        &format!("authMode {}", updated["authMode"].as_str().unwrap_or("?")),
    );

    // 3. Can this machine sandbox commands? `command/exec` runs one command without a thread.
    let sandboxed = probe_sandbox(&mut server, &workspace, &out)?;

    // 4. A thread in the workspace: commands run sandboxed and the model may ask to leave the
    //    sandbox, which the user (here: this demo) approves or not.
    let sandbox = if sandboxed {
        "workspace-write"
    } else {
        "danger-full-access"
    };
    let thread = call(
        &mut server,
        "thread/start",
        json!({"cwd": workspace.display().to_string(), "sandbox": sandbox,
            "approvalPolicy": "on-request"}),
    )?;
    let thread_id = thread["thread"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    out.step(
        "→ thread/start",
        &format!("← thread {thread_id} ({sandbox} sandbox, approvals on request)"),
    );

    // 5. The turn. turn/start answers at once; the turn then streams notifications, and the
    //    server sends us requests that we must answer: a token refresh within 10 s, an approval
    //    whenever the user decides (it waits; `turn/interrupt` or a decline ends the wait).
    let turn = call(
        &mut server,
        "turn/start",
        json!({"threadId": thread_id, "input": [{"type": "text", "text": PROMPT}]}),
    )?;
    let turn_id = turn["turn"]["id"].as_str().unwrap_or_default().to_string();
    out.step("→ turn/start", &format!("user: {PROMPT}"));
    let mut mapper = EventMapper::default();
    let deadline = Instant::now() + TURN_TIMEOUT;
    while mapper.outcome.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = server
            .next(Some(left))?
            .ok_or_else(|| anyhow!("the turn did not finish within {TURN_TIMEOUT:?}"))?;
        for note in notes.try_iter() {
            out.say(format!("  {note}"));
        }
        match message {
            Message::Notification { method, params } => {
                for event in mapper.on_notification(&method, &params, &turn_id) {
                    for line in render::event_lines(&event) {
                        out.say(format!("  {line}"));
                    }
                }
            }
            Message::Request { id, method, params } => {
                let answer = answer(&method, &params, &fresh_token, &out);
                match answer {
                    Ok(result) => server.respond(&id, result)?,
                    Err(message) => {
                        server.respond_error(&id, crate::rpc::METHOD_NOT_FOUND, &message)?
                    }
                }
            }
        }
    }

    // 6. Shut down: closing the server's stdin stops its work; it flushes and exits 0.
    let status = server.finish(SHUTDOWN_TIMEOUT);
    if mapper.outcome != Some(true) {
        bail!("the turn did not complete");
    }
    check_results(&workspace)?;
    out.say(format!(
        "\nchecked: {GREETING_FILE} now reads {:?}, and ../{NOTE_FILE} was written after the approval",
        GREETING_AFTER.trim_end()
    ));
    match status {
        Some(s) if s.success() => {
            out.say("demo finished: the turn completed and the app-server exited 0");
            Ok(())
        }
        other => bail!("the app-server did not exit cleanly: {other:?}"),
    }
}

/// What the app answers to each server request: fresh tokens after a 401, and approval
/// decisions (a real app asks its user; the demo accepts).
fn answer(method: &str, params: &Value, fresh_token: &str, out: &Show) -> Result<Value, String> {
    match method {
        "account/chatgptAuthTokens/refresh" => {
            out.step(
                "← account/chatgptAuthTokens/refresh",
                &format!(
                    "reason {}, previous account {}",
                    params["reason"].as_str().unwrap_or("?"),
                    params["previousAccountId"].as_str().unwrap_or("none")
                ),
            );
            out.step(
                "→ (answer)",
                "fresh tokens; the server retries the model request with them",
            );
            Ok(
                json!({"accessToken": fresh_token, "chatgptAccountId": ACCOUNT_ID,
                "chatgptPlanType": "plus"}),
            )
        }
        "item/commandExecution/requestApproval" | "item/fileChange/requestApproval" => {
            let reason = params["reason"].as_str().unwrap_or("(no reason given)");
            out.step(&format!("← {method}"), &format!("reason: {reason}"));
            out.step("→ (answer)", "accept (the demo stands in for the user)");
            Ok(json!({"decision": "accept"}))
        }
        other => Err(format!("the demo does not handle {other}")),
    }
}

/// Runs `true` under the read-only sandbox; says clearly when this machine cannot sandbox.
fn probe_sandbox(server: &mut AppServerChild, workspace: &Path, out: &Show) -> Result<bool> {
    let outcome = server.request(
        "command/exec",
        json!({"command": ["true"], "cwd": workspace.display().to_string(),
            "sandboxPolicy": {"type": "readOnly"}}),
        Some(REQUEST_TIMEOUT),
    )?;
    let problem = match outcome {
        Ok(result) if result["exitCode"] == 0 => None,
        Ok(result) => Some(format!(
            "exit {}: {}",
            result["exitCode"],
            result["stderr"].as_str().unwrap_or_default().trim()
        )),
        Err(e) => Some(e.message),
    };
    match problem {
        None => {
            out.step(
                "→ command/exec [\"true\"]",
                "← exit 0: commands can be sandboxed here",
            );
            Ok(true)
        }
        Some(problem) => {
            eprintln!(
                "note: the sandbox is unavailable on this machine ({problem}); the demo runs its \
                 commands without it, so the write beside the workspace will not be refused"
            );
            Ok(false)
        }
    }
}

/// The turn's effects on disk: the edited greeting and the approved note.
fn check_results(workspace: &Path) -> Result<()> {
    let greeting = std::fs::read_to_string(workspace.join(GREETING_FILE))?;
    if greeting != GREETING_AFTER {
        bail!("{GREETING_FILE} reads {greeting:?} after the turn, not {GREETING_AFTER:?}");
    }
    let note_path = workspace.join("..").join(NOTE_FILE);
    let note = std::fs::read_to_string(&note_path)
        .with_context(|| format!("the approved note {} is missing", note_path.display()))?;
    if note.trim() != "written with your approval" {
        bail!("{} reads {note:?}", note_path.display());
    }
    Ok(())
}

/// Waits for the notification `method` and returns its params; what arrives before it is
/// dropped (the demo shows only what it explains).
fn wait_for(server: &mut AppServerChild, method: &str) -> Result<Value> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match server.next(Some(left))? {
            Some(Message::Notification { method: m, params }) if m == method => return Ok(params),
            Some(_) => {}
            None => bail!("no {method} within {REQUEST_TIMEOUT:?}"),
        }
    }
}

/// Sends a request and returns its result; an error answer is an error.
fn call(server: &mut AppServerChild, method: &str, params: Value) -> Result<Value> {
    server
        .request(method, params, Some(REQUEST_TIMEOUT))?
        .map_err(|e| anyhow!("{method} failed: {e}"))
}

/// A JWT-shaped token (unsigned; the server reads claims without checking signatures, and the
/// scripted model only compares strings) for the demo's ChatGPT account.
fn fake_access_token(label: &str) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = json!({
        "email": "demo@example.com",
        "exp": crate::time::unix_seconds() + 3600,
        "demo_token": label,
        "https://api.openai.com/auth": {"chatgpt_account_id": ACCOUNT_ID,
            "chatgpt_plan_type": "plus", "chatgpt_user_id": "user-demo"},
    });
    format!(
        "{}.{}.demo",
        engine.encode(r#"{"alg":"none","typ":"JWT"}"#),
        engine.encode(claims.to_string())
    )
}

/// The readable account (nothing of it with `--json`, which shows the raw lines instead).
struct Show {
    raw: bool,
}

impl Show {
    fn say(&self, text: impl std::fmt::Display) {
        if !self.raw {
            render::print_line(&text.to_string());
        }
    }

    /// One protocol step: who sent what, then a detail.
    fn step(&self, what: &str, detail: &str) {
        self.say(format!("{what:<40}{detail}"));
    }
}

/// A fresh scratch directory (CODEX_HOME and the workspace), removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn create() -> Result<Self> {
        let root = std::env::temp_dir().join(format!("codex-lite-demo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for dir in ["home", "workspace"] {
            std::fs::create_dir_all(root.join(dir))
                .with_context(|| format!("creating {}", root.join(dir).display()))?;
        }
        // Canonical, so paths the server reports compare equal (macOS: /var → /private/var).
        Ok(Self(root.canonicalize()?))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn fake_tokens_carry_the_account_claims() {
        let token = fake_access_token("x");
        let claims = crate::auth::jwt::parse(&token).unwrap();
        assert_eq!(claims.account_id.as_deref(), Some(ACCOUNT_ID));
        assert!(claims.exp.is_some_and(|e| e > 0));
        assert_ne!(fake_access_token("a"), fake_access_token("b"));
    }
}
