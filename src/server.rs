//! The main loop of `app-server`: the handshake gate, request dispatch, and shutdown on stdin
//! EOF. It never blocks on I/O of its own: handlers answer at once or hand work to a thread.
//! Framing and the pending map are `rpc/`'s; what each method does lives in its own module.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::Config;
use crate::protocol::{InitializeParams, InitializeResponse, ServerInfo, method};
use crate::rpc::{Incoming, Next, RequestId, Rpc, RpcError, Transport};
use crate::thread::SharedThread;
use crate::tools::ToolEnv;

/// How long shutdown waits for queued output to reach a client that may have stopped reading.
const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits for interrupted turns to emit `turn/completed`.
const SHUTDOWN_TURN_GRACE: Duration = Duration::from_secs(3);

/// Work handed to the main loop by another thread (it runs there, with the server state).
pub type Job = Box<dyn FnOnce(&mut Server) + Send>;
/// Jobs queued for the main loop at most; senders wait beyond it.
const JOBS_CAPACITY: usize = 64;

/// What the handshake established about this connection.
pub struct Session {
    /// `clientInfo.name`: the `originator` header and user-agent prefix upstream.
    pub client_name: String,
    /// The full user agent sent upstream.
    pub user_agent: String,
}

/// The connection's state, owned by the main loop. Method handlers live in their own modules
/// as `impl Server` blocks (`threads/`, `commands.rs`, `accounts/`).
pub struct Server {
    /// The connection.
    pub rpc: Rpc,
    /// Configuration from config.toml and `-c`.
    pub config: Config,
    /// Set by `initialize`.
    pub session: Option<Session>,
    /// Loaded threads by id.
    pub threads: HashMap<String, SharedThread>,
    /// Process environment for commands (with the alias directory on `PATH`).
    pub tool_env: Arc<ToolEnv>,
    /// Credentials for the model client.
    pub auth: Arc<crate::auth::AuthManager>,
    /// Running `command/exec` processes by client process id.
    pub commands: crate::commands::Registry,
    /// The pending browser or device-code login.
    pub logins: crate::accounts::PendingSlot,
    /// The model catalog (fetched lazily, never before `initialize` is answered).
    pub catalog: Arc<crate::models::Catalog>,
    /// Requests parked once until the catalog settled (never parked twice).
    pub parked: HashSet<RequestId>,
    /// Requests run again once a running turn they interrupted had ended (`thread/revert`,
    /// `thread/delete`); never made to wait twice.
    pub waited: HashSet<RequestId>,
    /// The latest usage windows model responses reported.
    pub rate_limits: Arc<crate::client::RateLimitStore>,
    /// Params of the thread/turn request being handled that we do not honour (each with its
    /// warning text); its handler reports them once it knows the thread.
    pub unhonoured: Vec<(String, String)>,
    /// The MCP servers, shared by every thread.
    pub mcp: Arc<crate::mcp::Registry>,
    /// Hands work back to the main loop ([`Job`]).
    pub jobs: crossbeam_channel::Sender<Job>,
    /// What `thread/list` knows of the rollout files (checked against them on every page).
    pub listing: crate::rollout::Listing,
    _alias_dir: Option<crate::exec::AliasDir>,
}

/// Runs the app-server on stdin/stdout until stdin closes, the client stops reading our stdout,
/// or a termination signal arrives; then stops the turns, kills every command, flushes and
/// returns the process exit code (0).
pub fn run(config: Config) -> i32 {
    // Before any thread exists, so every thread inherits the blocked termination signals.
    crate::lifecycle::catch_signals();
    crate::platform::limit_malloc_arenas();
    // Before any command or MCP server can start: what our parent leaked stays with us.
    crate::platform::keep_inherited_descriptors_from_children();
    crate::sandbox::configure(&config);
    let transport = match Transport::start(std::io::stdin(), std::io::stdout()) {
        Ok(t) => t,
        Err(e) => {
            crate::log::error(&format!("cannot start the stdio transport: {e}"));
            return 1;
        }
    };
    crate::lifecycle::watch(transport.stop_sender());
    let (jobs_tx, jobs) = crossbeam_channel::bounded(JOBS_CAPACITY);
    let mut server = Server::new(transport.rpc.clone(), config, jobs_tx);
    // A slow client holds back the turns' output, never the main loop (interrupts, signals).
    transport.rpc.never_wait_on_this_thread();
    loop {
        match transport.inbox.recv_or_job(&jobs) {
            Some(Next::Message(message)) => server.handle(message),
            Some(Next::Job(job)) => job(&mut server),
            Some(Next::Stop(reason)) => {
                crate::log::info(&crate::lifecycle::describe(reason));
                break;
            }
            None => {
                crate::log::info("stdin closed; shutting down");
                break;
            }
        }
    }
    server.interrupt_all_turns(SHUTDOWN_TURN_GRACE);
    server.commands.terminate_all();
    crate::tools::unified_exec::shutdown(server.threads.values());
    server.mcp.shutdown();
    // Whatever is still running (any caller's command, however it was started) dies now.
    crate::exec::kill_all();
    drop(server);
    transport.finish(SHUTDOWN_FLUSH_TIMEOUT);
    crate::exec::kill_all();
    0
}

/// Decodes `params` into `T`; absent params decode like `{}` so all-optional params may be
/// omitted. Errors are -32602 with serde's message.
pub fn decode<T: DeserializeOwned>(params: Option<Value>) -> Result<T, RpcError> {
    let value = params.unwrap_or_else(|| Value::Object(Default::default()));
    serde_json::from_value(value).map_err(RpcError::invalid_params)
}

impl Server {
    fn new(rpc: Rpc, config: Config, jobs: crossbeam_channel::Sender<Job>) -> Self {
        let alias_dir = match crate::exec::AliasDir::create(&config.codex_home) {
            Ok(dir) => Some(dir),
            Err(e) => {
                crate::log::warn(&format!("no apply_patch alias directory: {e:#}"));
                None
            }
        };
        let mut env = config.shell_environment_policy.build(std::env::vars_os());
        if let Some(dir) = &alias_dir {
            dir.prepend_to_path(&mut env);
        }
        let exe = std::env::current_exe().unwrap_or_else(|_| "codex-lite".into());
        let auth = Arc::new(crate::auth::AuthManager::new(&config, rpc.clone()));
        let catalog = Arc::new(crate::models::Catalog::new(
            config.codex_home.clone(),
            Some(rpc.clone()),
        ));
        let mcp = Arc::new(crate::mcp::Registry::new(rpc.clone(), &config.mcp_servers));
        Self {
            catalog,
            parked: HashSet::new(),
            waited: HashSet::new(),
            rate_limits: Arc::default(),
            rpc,
            config,
            session: None,
            threads: HashMap::new(),
            tool_env: Arc::new(ToolEnv {
                exe,
                env,
                mcp: mcp.clone(),
            }),
            mcp,
            jobs,
            auth,
            commands: crate::commands::Registry::default(),
            logins: Default::default(),
            unhonoured: Vec::new(),
            listing: Default::default(),
            _alias_dir: alias_dir,
        }
    }

    /// `clientInfo.name` of this connection (the `originator`).
    pub fn originator(&self) -> Option<String> {
        self.session.as_ref().map(|s| s.client_name.clone())
    }

    /// `(originator, user agent)` of this connection's upstream requests.
    pub fn client_identity(&self) -> (String, String) {
        match &self.session {
            Some(s) => (s.client_name.clone(), s.user_agent.clone()),
            None => ("codex-lite".to_string(), user_agent("codex-lite")),
        }
    }

    /// A model client for a thread's configuration.
    pub fn model_client(&self, config: &Config) -> crate::client::ModelClient {
        let (originator, user_agent) = self.client_identity();
        crate::client::ModelClient::new(config, self.auth.clone(), originator, user_agent)
            .with_rate_limit_store(self.rate_limits.clone())
    }

    /// Handles one client message (also a request parked until the catalog settled).
    pub(crate) fn handle(&mut self, message: Incoming) {
        match message {
            Incoming::Notification { method } => {
                if method != method::INITIALIZED {
                    crate::log::debug(&format!("ignoring client notification {method}"));
                }
            }
            Incoming::Request { id, method, params } => {
                // A bug in one handler must cost one request, not the connection.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.handle_request(&id, &method, params)
                }));
                if outcome.is_err() {
                    crate::log::error(&format!("handler for {method} panicked"));
                    self.rpc.respond_error(
                        &id,
                        &RpcError::internal(format!("internal error while handling {method}")),
                    );
                }
            }
        }
    }

    fn handle_request(&mut self, id: &RequestId, method: &str, params: Option<Value>) {
        if method == method::INITIALIZE {
            let outcome = self.initialize(params);
            let initialized = outcome.is_ok();
            self.rpc.respond_with(id, outcome);
            if initialized {
                self.warn_unknown_config();
            }
            return;
        }
        if self.session.is_none() {
            return self
                .rpc
                .respond_error(id, &RpcError::invalid_request("Not initialized"));
        }
        if self.park_for_catalog(id, method, &params) {
            return; // answered once the catalog settled
        }
        let outcome = match method {
            "model/list" => Some(decode(params).map(|p| {
                let snapshot = self.catalog_access(&self.config).snapshot();
                self.rpc.respond(id, crate::models::list(&snapshot, p))
            })),
            m if m.starts_with("thread/") || m.starts_with("turn/") || m == "review/start" => {
                self.handle_thread_request(id, m, params)
            }
            m if m.starts_with("command/exec") => self.handle_command_request(id, m, params),
            m if m.starts_with("account/") || m == "getAuthStatus" => {
                self.handle_account_request(id, m, params)
            }
            "mcpServerStatus/list" | "config/mcpServer/reload" => {
                self.handle_mcp_request(id, method, params)
            }
            _ => None,
        };
        match outcome {
            Some(Ok(())) => {}
            Some(Err(error)) => self.rpc.respond_error(id, &error),
            None => self
                .rpc
                .respond_error(id, &RpcError::method_not_found(method)),
        }
    }

    /// Runs a request again (a job, after what it waited for happened).
    pub fn redispatch(&mut self, id: &RequestId, method: &str, params: Option<Value>) {
        self.handle_request(id, method, params);
    }

    fn initialize(&mut self, params: Option<Value>) -> Result<InitializeResponse, RpcError> {
        if self.session.is_some() {
            return Err(RpcError::invalid_request("Already initialized"));
        }
        let params: InitializeParams = decode(params)?;
        if let Some(methods) = params
            .capabilities
            .and_then(|c| c.opt_out_notification_methods)
        {
            self.rpc.set_opt_out(methods);
        }
        let user_agent = user_agent(&params.client_info.name);
        self.session = Some(Session {
            client_name: params.client_info.name,
            user_agent: user_agent.clone(),
        });
        Ok(InitializeResponse {
            user_agent,
            codex_home: self.config.codex_home.display().to_string(),
            platform_family: if cfg!(windows) { "windows" } else { "unix" },
            platform_os: std::env::consts::OS,
            server_info: ServerInfo {
                name: env!("CARGO_PKG_NAME"),
                version: crate::client::CODEX_VERSION,
            },
        })
    }
}

impl Server {
    /// The one `configWarning` naming every config.toml and `-c` key nothing honours.
    fn warn_unknown_config(&self) {
        let keys = &self.config.unknown_keys;
        if keys.is_empty() {
            return;
        }
        let summary = format!(
            "{} unknown configuration {} ignored: {}",
            keys.len(),
            if keys.len() == 1 {
                "key is"
            } else {
                "keys are"
            },
            keys.join(", ")
        );
        self.rpc.notify(
            "configWarning",
            crate::protocol::notify::ConfigWarning {
                summary: &summary,
                details: Some("codex-lite does not implement these settings; check for typos"),
            },
        );
    }
}

/// `<originator>/<Codex version> (<os> <os version>; <arch>) codex-lite/<our version>`, e.g.
/// `codex_vscode/0.169.0 (Linux 6.8.0; x86_64) codex-lite/0.1.0`: the Codex protocol version
/// we implement first (backends and SDKs read it), ours last.
fn user_agent(originator: &str) -> String {
    let (os, release) = crate::platform::os_name_and_release();
    format!(
        "{originator}/{} ({os} {release}; {}) {}/{}",
        crate::client::CODEX_VERSION,
        std::env::consts::ARCH,
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION"),
    )
}
