//! Sandbox policies and what they mean on disk: the policy enum in its three spellings (helper
//! JSON, protocol camelCase, config.toml), the writable roots and their read-only carve-outs
//! (sandbox.md §1), and the heuristic that tells whether a failed command looks like a sandbox
//! denial (§5).
//!
//! This module decides *what* is allowed; it does not enforce anything. Enforcement lives in the
//! Linux helper (`linux.rs`: `plan.rs` computes the paths, `namespaces.rs` runs the processes,
//! `view.rs` with `mounts.rs` and `placeholders.rs` builds the filesystem, `caps.rs`,
//! `seccomp/` and `landlock.rs` confine) and the Seatbelt profile (`macos.rs`); spawning and
//! supervising the confined child is `crate::exec`.

pub mod cli;
// The helper's command line is portable (and unit-tested everywhere); only Linux runs it.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub mod linux;
pub mod macos;
mod platform;

pub use platform::{confined_command, marker_env};

#[cfg(target_os = "linux")]
mod caps;
#[cfg(target_os = "linux")]
mod landlock;
#[cfg(target_os = "linux")]
mod mounts;
#[cfg(target_os = "linux")]
mod namespaces;
#[cfg(target_os = "linux")]
mod placeholders;
#[cfg(target_os = "linux")]
mod plan;
#[cfg(target_os = "linux")]
pub(crate) mod seccomp;
#[cfg(target_os = "linux")]
mod view;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::{SandboxMode, SandboxWorkspaceWrite};

/// Process-wide settings of every sandbox this process starts, from [`configure`].
#[derive(Debug, Clone, Default)]
struct Settings {
    codex_home: Option<PathBuf>,
    allow_without_namespaces: bool,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Records, once per process, what every sandbox it starts must honour beyond the policy:
/// CODEX_HOME (auth.json, config, rollouts, the alias directory first on commands' `PATH`) stays
/// read-only to sandboxed commands whatever the policy, and whether the Linux helper may run
/// without namespaces (`[sandbox_linux] allow_without_namespaces`, default false). Call it right
/// after loading the configuration (the server, the `sandbox` CLI); later calls change nothing.
pub fn configure(config: &crate::config::Config) {
    let codex_home =
        std::fs::canonicalize(&config.codex_home).unwrap_or_else(|_| config.codex_home.clone());
    let _ = SETTINGS.set(Settings {
        codex_home: Some(codex_home),
        allow_without_namespaces: config.sandbox_linux.allow_without_namespaces,
    });
}

/// The CODEX_HOME given to [`configure`], which sandboxed commands may not write.
pub fn protected_codex_home() -> Option<&'static Path> {
    SETTINGS.get().and_then(|s| s.codex_home.as_deref())
}

/// Whether [`configure`] allowed the Linux helper's degraded mode (no namespaces).
pub fn allows_without_namespaces() -> bool {
    SETTINGS.get().is_some_and(|s| s.allow_without_namespaces)
}

/// What a sandboxed command may do. Reads are allowed everywhere under every policy; the policies
/// differ in where writes go and whether the network is reachable.
///
/// Serde uses the helper spelling of sandbox.md §1 (`{"type":"read-only"}`,
/// `{"type":"workspace-write","writable_roots":[…],"network_access":false,…}`,
/// `{"type":"danger-full-access"}`); wrap it in [`ProtocolSandboxPolicy`] for the app-server's
/// camelCase spelling. The default is [`SandboxPolicy::ReadOnly`], the default of `sandbox_mode`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum SandboxPolicy {
    /// Writes nowhere except `/dev/null`; no network.
    #[default]
    ReadOnly,
    /// Writes beneath the writable roots (configured roots, the cwd, `/tmp`, `$TMPDIR`) minus the
    /// read-only carve-outs (`.git` with its git and common directories, `.codex`, `.agents`);
    /// network only if `network_access`.
    WorkspaceWrite {
        /// Extra absolute directories that are writable (a relative path fails to parse).
        #[serde(default, deserialize_with = "absolute_paths")]
        writable_roots: Vec<PathBuf>,
        /// Whether the command may use the network (default false).
        #[serde(default)]
        network_access: bool,
        /// Leave `$TMPDIR` out of the writable roots (default false).
        #[serde(default)]
        exclude_tmpdir_env_var: bool,
        /// Leave `/tmp` out of the writable roots (default false).
        #[serde(default)]
        exclude_slash_tmp: bool,
    },
    /// No sandbox at all: writes everywhere, network on.
    DangerFullAccess,
}

/// One writable root and the paths inside it that stay read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritableRoot {
    /// The directory beneath which writes are allowed, as configured (not canonicalized).
    pub root: PathBuf,
    /// Paths that stay read-only although they lie in (or, for a `gitdir:` target or a worktree's
    /// common directory, are reached from) `root`: `.git`, its git directory and common directory,
    /// `.codex` and `.agents`, plus the targets of those that are symlinks. The three names are
    /// listed even when they do not exist (they must not be created); targets only when they do.
    pub read_only_subpaths: Vec<PathBuf>,
}

/// Failures the callers of this module branch on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxError {
    /// A configured writable root is not absolute (sandbox.md §1: relative roots are an error).
    RelativeWritableRoot(PathBuf),
    /// The requested sandbox does not exist on this operating system; the text is the spec's
    /// message (`Seatbelt sandbox is only available on macOS`).
    WrongPlatform(&'static str),
    /// This operating system cannot enforce `policy` (Windows: no sandbox); the command is not
    /// run at all rather than unconfined.
    #[cfg_attr(any(target_os = "linux", target_os = "macos"), allow(dead_code))]
    Unenforceable {
        /// The policy asked for (`read-only`, `workspace-write`).
        policy: &'static str,
        /// `std::env::consts::OS`.
        os: &'static str,
    },
}

impl fmt::Display for SandboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RelativeWritableRoot(path) => {
                write!(
                    f,
                    "writable root {} is not an absolute path",
                    path.display()
                )
            }
            Self::WrongPlatform(message) => f.write_str(message),
            Self::Unenforceable { policy, os } => write!(
                f,
                "the {policy} sandbox is not available on {os}, so the command was not run: \
                 choose the danger-full-access policy to run commands without a sandbox \
                 (sandbox_mode = \"danger-full-access\" in config.toml, or sandboxPolicy \
                 {{\"type\":\"dangerFullAccess\"}})"
            ),
        }
    }
}

impl std::error::Error for SandboxError {}

impl SandboxPolicy {
    /// The policy a `sandbox_mode` plus its `[sandbox_workspace_write]` table describe. The table
    /// only matters for workspace-write. Relative writable roots are an error (`config/load.rs`
    /// already rejects them; this keeps the conversion total on its own).
    pub fn from_config(
        mode: SandboxMode,
        settings: &SandboxWorkspaceWrite,
    ) -> Result<Self, SandboxError> {
        Ok(match mode {
            SandboxMode::ReadOnly => Self::ReadOnly,
            SandboxMode::DangerFullAccess => Self::DangerFullAccess,
            SandboxMode::WorkspaceWrite => {
                if let Some(root) = settings.writable_roots.iter().find(|r| !r.is_absolute()) {
                    return Err(SandboxError::RelativeWritableRoot(root.clone()));
                }
                Self::WorkspaceWrite {
                    writable_roots: settings.writable_roots.clone(),
                    network_access: settings.network_access,
                    exclude_tmpdir_env_var: settings.exclude_tmpdir_env_var,
                    exclude_slash_tmp: settings.exclude_slash_tmp,
                }
            }
        })
    }

    /// Whether commands may reach the network (danger-full-access, or workspace-write with
    /// `network_access`).
    pub fn has_network(&self) -> bool {
        match self {
            Self::ReadOnly => false,
            Self::WorkspaceWrite { network_access, .. } => *network_access,
            Self::DangerFullAccess => true,
        }
    }

    /// The policy's name as the config file spells it (`read-only`, `workspace-write`,
    /// `danger-full-access`), for messages.
    #[cfg_attr(any(target_os = "linux", target_os = "macos"), allow(dead_code))]
    pub fn name(&self) -> &'static str {
        match self {
            Self::ReadOnly => "read-only",
            Self::WorkspaceWrite { .. } => "workspace-write",
            Self::DangerFullAccess => "danger-full-access",
        }
    }

    /// Whether writes are unrestricted (danger-full-access): then no sandbox is applied at all.
    pub fn has_full_disk_write_access(&self) -> bool {
        matches!(self, Self::DangerFullAccess)
    }

    /// The writable roots for a command whose policy cwd is `cwd`, with their carve-outs, in the
    /// order of sandbox.md §1; `$TMPDIR` is read from this process's environment. Empty for
    /// read-only and for danger-full-access (check [`Self::has_full_disk_write_access`] first).
    pub fn writable_roots(&self, cwd: &Path) -> Vec<WritableRoot> {
        let tmpdir = std::env::var_os("TMPDIR").map(PathBuf::from);
        self.writable_roots_with_tmpdir(cwd, tmpdir.as_deref())
    }

    /// [`Self::writable_roots`] with `$TMPDIR` given explicitly (for a child environment that
    /// differs from ours). Relative configured roots cannot come out of parsing and are skipped
    /// here; duplicates keep their first place.
    pub fn writable_roots_with_tmpdir(
        &self,
        cwd: &Path,
        tmpdir: Option<&Path>,
    ) -> Vec<WritableRoot> {
        let Self::WorkspaceWrite {
            writable_roots,
            exclude_tmpdir_env_var,
            exclude_slash_tmp,
            ..
        } = self
        else {
            return Vec::new();
        };
        let mut roots: Vec<PathBuf> = writable_roots
            .iter()
            .filter(|r| r.is_absolute())
            .cloned()
            .collect();
        roots.push(cwd.to_path_buf());
        if !exclude_slash_tmp {
            roots.push(PathBuf::from("/tmp"));
        }
        if !exclude_tmpdir_env_var && let Some(tmpdir) = tmpdir.filter(|t| t.is_absolute()) {
            roots.push(tmpdir.to_path_buf());
        }
        let mut seen: Vec<PathBuf> = Vec::new();
        roots.retain(|r| {
            let fresh = !seen.contains(r);
            seen.push(r.clone());
            fresh
        });
        roots
            .into_iter()
            .map(|root| WritableRoot {
                read_only_subpaths: read_only_subpaths(&root),
                root,
            })
            .collect()
    }
}

/// The names that stay read-only at the top level of every writable root, whether or not they
/// exist yet: tools outside the sandbox read them (git hooks and config, Codex's project config,
/// agent skills), so a command must neither change them nor create them.
pub const PROTECTED_NAMES: [&str; 3] = [".git", ".codex", ".agents"];

/// The carve-outs of `root`: for each of [`PROTECTED_NAMES`], the entry itself (present or not);
/// when it is a symlink, its resolved target too; for `.git`, the git directory it stands for
/// when that lies elsewhere (the `gitdir:` target of a pointer file) and the repository's common
/// directory named by that git directory's `commondir` file (the main repository of a linked
/// worktree, with its hooks and config). Targets are listed only when they exist.
fn read_only_subpaths(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let push = |out: &mut Vec<PathBuf>, path: PathBuf| {
        if !out.contains(&path) {
            out.push(path);
        }
    };
    for name in PROTECTED_NAMES {
        let entry = root.join(name);
        let Ok(meta) = std::fs::symlink_metadata(&entry) else {
            push(&mut out, entry);
            continue;
        };
        push(&mut out, entry.clone());
        if meta.file_type().is_symlink()
            && let Ok(target) = std::fs::canonicalize(&entry)
        {
            push(&mut out, target);
        }
        if name != ".git" {
            continue;
        }
        let git_dir = if entry.is_file() {
            let target = std::fs::read_to_string(&entry)
                .ok()
                .and_then(|text| gitdir_target(&text).map(|t| root.join(t)));
            match target.filter(|t| t.is_dir()) {
                Some(target) => {
                    push(&mut out, target.clone());
                    target
                }
                None => continue,
            }
        } else {
            entry
        };
        if let Some(common) = common_dir(&git_dir) {
            push(&mut out, common);
        }
    }
    out
}

/// The common directory of a linked worktree's git directory (its `commondir` file, relative to
/// the git directory or absolute), when it exists.
fn common_dir(git_dir: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(git_dir.join("commondir")).ok()?;
    let line = text.lines().next()?.trim();
    if line.is_empty() {
        return None;
    }
    let common = git_dir.join(line);
    common.is_dir().then_some(common)
}

/// The path of a `.git` pointer file (`gitdir: <path>` on its first line), as written.
fn gitdir_target(text: &str) -> Option<&str> {
    let line = text.lines().next()?;
    let target = line.strip_prefix("gitdir:")?.trim();
    (!target.is_empty()).then_some(target)
}

fn absolute_paths<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<PathBuf>, D::Error> {
    let paths = Vec::<PathBuf>::deserialize(deserializer)?;
    if let Some(relative) = paths.iter().find(|p| !p.is_absolute()) {
        return Err(serde::de::Error::custom(
            SandboxError::RelativeWritableRoot(relative.clone()),
        ));
    }
    Ok(paths)
}

/// A [`SandboxPolicy`] in the app-server protocol's camelCase spelling
/// (`{"type":"readOnly"}`, `{"type":"workspaceWrite","writableRoots":[],"networkAccess":false,
/// "excludeTmpdirEnvVar":false,"excludeSlashTmp":false}`, `{"type":"dangerFullAccess"}`), for the
/// `sandbox`/`sandboxPolicy` fields of protocol messages.
///
/// Parsing accepts what the 0.169.0 schema allows and rejects what this implementation cannot
/// honour rather than silently changing its meaning: `readOnly` with `networkAccess: true` and
/// `externalSandbox` are errors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProtocolSandboxPolicy(pub SandboxPolicy);

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum ProtocolRepr {
    #[serde(rename_all = "camelCase")]
    ReadOnly {
        #[serde(default, skip_serializing)]
        network_access: bool,
    },
    #[serde(rename_all = "camelCase")]
    WorkspaceWrite {
        #[serde(default, deserialize_with = "absolute_paths")]
        writable_roots: Vec<PathBuf>,
        #[serde(default)]
        network_access: bool,
        #[serde(default)]
        exclude_tmpdir_env_var: bool,
        #[serde(default)]
        exclude_slash_tmp: bool,
    },
    DangerFullAccess,
    #[serde(rename_all = "camelCase")]
    ExternalSandbox {
        #[serde(default, skip_serializing)]
        network_access: serde_json::Value,
    },
}

impl Serialize for ProtocolSandboxPolicy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let repr = match self.0.clone() {
            SandboxPolicy::ReadOnly => ProtocolRepr::ReadOnly {
                network_access: false,
            },
            SandboxPolicy::WorkspaceWrite {
                writable_roots,
                network_access,
                exclude_tmpdir_env_var,
                exclude_slash_tmp,
            } => ProtocolRepr::WorkspaceWrite {
                writable_roots,
                network_access,
                exclude_tmpdir_env_var,
                exclude_slash_tmp,
            },
            SandboxPolicy::DangerFullAccess => ProtocolRepr::DangerFullAccess,
        };
        repr.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ProtocolSandboxPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        Ok(Self(match ProtocolRepr::deserialize(deserializer)? {
            ProtocolRepr::ReadOnly {
                network_access: false,
            } => SandboxPolicy::ReadOnly,
            ProtocolRepr::ReadOnly {
                network_access: true,
            } => {
                return Err(D::Error::custom(
                    "readOnly sandbox policy with networkAccess is not supported",
                ));
            }
            ProtocolRepr::WorkspaceWrite {
                writable_roots,
                network_access,
                exclude_tmpdir_env_var,
                exclude_slash_tmp,
            } => SandboxPolicy::WorkspaceWrite {
                writable_roots,
                network_access,
                exclude_tmpdir_env_var,
                exclude_slash_tmp,
            },
            ProtocolRepr::DangerFullAccess => SandboxPolicy::DangerFullAccess,
            ProtocolRepr::ExternalSandbox { .. } => {
                return Err(D::Error::custom(
                    "externalSandbox sandbox policy is not supported",
                ));
            }
        }))
    }
}

impl From<SandboxPolicy> for ProtocolSandboxPolicy {
    fn from(policy: SandboxPolicy) -> Self {
        Self(policy)
    }
}

impl From<ProtocolSandboxPolicy> for SandboxPolicy {
    fn from(policy: ProtocolSandboxPolicy) -> Self {
        policy.0
    }
}

/// Whether a sandboxed command's failure looks like the sandbox stopped it (sandbox.md §5): it
/// died of SIGSYS, or it exited non-zero and its output (lower-cased) mentions `operation not
/// permitted`, `permission denied`, `read-only file system`, `seccomp`, `sandbox` or `landlock`.
/// Only meaningful for commands that ran under a sandbox; a success is never a denial.
pub fn looks_denied(exit_code: Option<i32>, signal: Option<i32>, output: &str) -> bool {
    const DENIAL_MARKERS: [&str; 6] = [
        "operation not permitted",
        "permission denied",
        "read-only file system",
        "seccomp",
        "sandbox",
        "landlock",
    ];
    if signal.is_some() && signal == crate::exec::BAD_SYSCALL_SIGNAL {
        return true;
    }
    match exit_code {
        Some(code) if code != 0 => {
            let lower = output.to_lowercase();
            DENIAL_MARKERS.iter().any(|m| lower.contains(m))
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
