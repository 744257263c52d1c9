//! The environment context (context.md §2): the facts about where and when the agent works —
//! cwd, the user's login shell, the local date and time zone, the approval policy, the sandbox
//! mode and network access — rendered as one `<environment_context>` block. Whether it is sent
//! is `context/mod.rs`'s decision (only when the text changes).

use std::path::Path;

use crate::config::ApprovalPolicy;
use crate::sandbox::SandboxPolicy;

use super::tz::LocalZone;

/// The text every environment context starts with (clients and our resume logic recognise the
/// message by it).
pub const OPEN_TAG: &str = "<environment_context>";

/// What the environment context says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentContext {
    /// The turn's working directory.
    pub cwd: String,
    /// The login shell's name (`bash`, `zsh`), from the user's passwd entry.
    pub shell: String,
    /// Local date, `YYYY-MM-DD`.
    pub current_date: String,
    /// IANA name of the local zone, when known.
    pub timezone: Option<String>,
    /// `untrusted`, `on-request` or `never`.
    pub approval_policy: &'static str,
    /// `read-only`, `workspace-write` or `danger-full-access`.
    pub sandbox_mode: &'static str,
    /// `enabled` or `restricted`.
    pub network_access: &'static str,
}

impl EnvironmentContext {
    /// The context for a turn in `cwd` with these policies, at `unix` seconds in `zone`.
    pub fn new(
        cwd: &Path,
        approval: ApprovalPolicy,
        sandbox: &SandboxPolicy,
        zone: &LocalZone,
        unix: i64,
    ) -> Self {
        Self {
            cwd: cwd.display().to_string(),
            shell: user_shell(),
            current_date: zone.date_at(unix),
            timezone: zone.name.clone(),
            approval_policy: approval.as_str(),
            sandbox_mode: match sandbox {
                SandboxPolicy::ReadOnly => "read-only",
                SandboxPolicy::WorkspaceWrite { .. } => "workspace-write",
                SandboxPolicy::DangerFullAccess => "danger-full-access",
            },
            network_access: if sandbox.has_network() {
                "enabled"
            } else {
                "restricted"
            },
        }
    }

    /// The `<environment_context>` block.
    pub fn render(&self) -> String {
        let mut out = String::from(OPEN_TAG);
        out.push('\n');
        let mut field = |name: &str, value: &str| {
            out.push_str(&format!("  <{name}>{}</{name}>\n", escape(value)));
        };
        field("cwd", &self.cwd);
        field("shell", &self.shell);
        field("current_date", &self.current_date);
        if let Some(zone) = &self.timezone {
            field("timezone", zone);
        }
        field("approval_policy", self.approval_policy);
        field("sandbox_mode", self.sandbox_mode);
        field("network_access", self.network_access);
        out.push_str("</environment_context>");
        out
    }
}

/// Escapes the characters that would end or open an XML element.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The name of the user's login shell (`bash`), from the passwd entry of the real user id
/// (not `$SHELL`, which any parent process may have changed); `sh` when the entry has none.
pub fn user_shell() -> String {
    let path = platform::login_shell().unwrap_or_default();
    let name = path.rsplit(['/', '\\']).next().unwrap_or_default();
    if name.is_empty() {
        platform::DEFAULT_SHELL.to_string()
    } else {
        name.trim_end_matches(".exe").to_string()
    }
}

#[cfg(unix)]
mod platform {
    /// POSIX: an empty shell field means `/bin/sh`.
    pub const DEFAULT_SHELL: &str = "sh";

    /// `pw_shell` of the real user's passwd entry.
    pub fn login_shell() -> Option<String> {
        let mut buffer = vec![0 as libc::c_char; 16 * 1024];
        // SAFETY: `entry` and `buffer` are ours and outlive the call; `getpwuid_r` writes at
        // most `buffer.len()` bytes and sets `result` to null or to `&entry`.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let status = unsafe {
            libc::getpwuid_r(
                libc::getuid(),
                &mut entry,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut result,
            )
        };
        if status != 0 || result.is_null() || entry.pw_shell.is_null() {
            return None;
        }
        // SAFETY: on success `pw_shell` points to a NUL-terminated string inside `buffer`.
        let shell = unsafe { std::ffi::CStr::from_ptr(entry.pw_shell) };
        Some(shell.to_string_lossy().into_owned())
    }
}

#[cfg(not(unix))]
mod platform {
    /// Windows has no passwd entry; commands run under PowerShell.
    pub const DEFAULT_SHELL: &str = "powershell";

    /// Windows has no login shell in a user database.
    pub fn login_shell() -> Option<String> {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn sample() -> EnvironmentContext {
        EnvironmentContext {
            cwd: "/work/a<b>&c".to_string(),
            shell: "zsh".to_string(),
            current_date: "2026-11-30".to_string(),
            timezone: Some("Europe/Paris".to_string()),
            approval_policy: "on-request",
            sandbox_mode: "workspace-write",
            network_access: "restricted",
        }
    }

    #[test]
    fn renders_every_field_in_order() {
        assert_eq!(
            sample().render(),
            "<environment_context>\n  <cwd>/work/a&lt;b&gt;&amp;c</cwd>\n  <shell>zsh</shell>\n  <current_date>2026-11-30</current_date>\n  <timezone>Europe/Paris</timezone>\n  <approval_policy>on-request</approval_policy>\n  <sandbox_mode>workspace-write</sandbox_mode>\n  <network_access>restricted</network_access>\n</environment_context>"
        );
        let no_zone = EnvironmentContext {
            timezone: None,
            ..sample()
        };
        assert!(!no_zone.render().contains("timezone"));
    }

    #[cfg(unix)]
    #[test]
    fn the_shell_comes_from_the_passwd_entry() {
        // The test process's own passwd entry, read independently of libc.
        let uid = unsafe { libc::getuid() };
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let expected = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 7 && f[2] == uid.to_string())
            .map(|f| f[6].rsplit('/').next().unwrap_or("").to_string());
        match expected {
            Some(name) if !name.is_empty() => assert_eq!(user_shell(), name),
            _ => println!("skipped: no /etc/passwd entry for uid {uid}"),
        }
    }
}
