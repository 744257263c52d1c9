//! Where a patch may write, judged on real paths: every touched path with its symlinks resolved
//! (a link inside the workspace that points outside counts as outside), whether the sandbox
//! lets it be written, the roots the user is asked to approve, and the policy an approved patch
//! is applied under: the thread's sandbox plus the approved roots, never none at all.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::sandbox::SandboxPolicy;

/// Symlinks followed before a path counts as unresolvable (the kernel's own limit).
const MAX_LINK_HOPS: usize = 40;

/// `path` (absolute, lexically normal) as the OS will really reach it: its deepest existing
/// ancestor canonicalized, the components that do not exist yet appended. A dangling symlink
/// on the way is followed to where it points (writing through it would create its target).
pub fn resolved(path: &Path) -> PathBuf {
    let mut current = path.to_path_buf();
    let mut missing: Vec<OsString> = Vec::new();
    let mut hops = 0;
    loop {
        if let Ok(real) = std::fs::canonicalize(&current) {
            return missing.iter().rev().fold(real, |acc, c| acc.join(c));
        }
        // A link whose target does not exist (canonicalize fails on it): follow it by hand.
        if let Ok(target) = std::fs::read_link(&current)
            && hops < MAX_LINK_HOPS
        {
            hops += 1;
            let base = current.parent().map(Path::to_path_buf).unwrap_or_default();
            current = crate::apply_patch::resolve(&base, &target);
            continue;
        }
        match (current.parent(), current.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_os_string());
                current = parent.to_path_buf();
            }
            // Nothing of it exists, not even a root: keep it as written.
            _ => return path.to_path_buf(),
        }
    }
}

/// Whether a command under `policy` (roots computed against `cwd`) may write the real path
/// `real` (from [`resolved`]): beneath a writable root, outside its read-only carve-outs and
/// outside the protected CODEX_HOME, all compared as real paths too.
pub fn is_writable(policy: &SandboxPolicy, cwd: &Path, real: &Path) -> bool {
    if crate::sandbox::protected_codex_home().is_some_and(|home| real.starts_with(home)) {
        return false;
    }
    if policy.has_full_disk_write_access() {
        return true;
    }
    policy.writable_roots(cwd).iter().any(|root| {
        real.starts_with(resolved(&root.root))
            && !root
                .read_only_subpaths
                .iter()
                .any(|ro| real.starts_with(resolved(ro)) || real.starts_with(ro))
    })
}

/// The directories an approved patch needs to write: for each touched real path, the deepest
/// existing directory above it (a patch may create the directories below). Each once.
pub fn approval_roots(real_paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    for path in real_paths {
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d.is_dir() {
                break;
            }
            dir = d.parent();
        }
        if let Some(dir) = dir
            && !roots.iter().any(|r| r == dir)
        {
            roots.push(dir.to_path_buf());
        }
    }
    roots
}

/// The policy an approved patch is applied under: the thread's own plus `roots` writable.
/// A read-only thread gets a workspace-write sandbox whose extra roots are only `roots` (no
/// `/tmp`, no `$TMPDIR`, no network); danger-full-access stays as it is.
pub fn approved_policy(current: &SandboxPolicy, roots: &[PathBuf]) -> SandboxPolicy {
    match current {
        SandboxPolicy::DangerFullAccess => SandboxPolicy::DangerFullAccess,
        SandboxPolicy::ReadOnly => SandboxPolicy::WorkspaceWrite {
            writable_roots: roots.to_vec(),
            network_access: false,
            exclude_tmpdir_env_var: true,
            exclude_slash_tmp: true,
        },
        SandboxPolicy::WorkspaceWrite {
            writable_roots,
            network_access,
            exclude_tmpdir_env_var,
            exclude_slash_tmp,
        } => {
            let mut all = writable_roots.clone();
            all.extend(
                roots
                    .iter()
                    .filter(|r| !writable_roots.contains(r))
                    .cloned(),
            );
            SandboxPolicy::WorkspaceWrite {
                writable_roots: all,
                network_access: *network_access,
                exclude_tmpdir_env_var: *exclude_tmpdir_env_var,
                exclude_slash_tmp: *exclude_slash_tmp,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::test_dir::Scratch;

    fn workspace() -> SandboxPolicy {
        SandboxPolicy::WorkspaceWrite {
            writable_roots: vec![],
            network_access: false,
            exclude_tmpdir_env_var: true,
            exclude_slash_tmp: true,
        }
    }

    #[test]
    fn missing_components_are_kept_below_the_real_ancestor() {
        let dir = Scratch::canonical("scope-missing");
        std::fs::create_dir(dir.0.join("a")).unwrap();
        assert_eq!(
            resolved(&dir.0.join("a").join("new").join("f.txt")),
            dir.0.join("a").join("new").join("f.txt")
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_judged_by_where_they_lead() {
        let ws = Scratch::canonical("scope-ws");
        let outside = Scratch::canonical("scope-outside");
        std::os::unix::fs::symlink(&outside.0, ws.0.join("escape")).unwrap();
        std::os::unix::fs::symlink(outside.0.join("nothing-yet"), ws.0.join("dangling")).unwrap();
        std::fs::create_dir(ws.0.join("inside")).unwrap();
        std::os::unix::fs::symlink(ws.0.join("inside"), ws.0.join("local")).unwrap();
        let policy = workspace();
        let cases = [
            (ws.0.join("plain.txt"), true),
            (ws.0.join("escape").join("pwned.txt"), false),
            (ws.0.join("escape").join("deep").join("pwned.txt"), false),
            (ws.0.join("dangling"), false),
            (ws.0.join("local").join("ok.txt"), true),
        ];
        for (path, writable) in cases {
            let real = resolved(&path);
            assert_eq!(
                is_writable(&policy, &ws.0, &real),
                writable,
                "{} -> {}",
                path.display(),
                real.display()
            );
        }
        assert_eq!(
            resolved(&ws.0.join("dangling")),
            outside.0.join("nothing-yet")
        );
        assert_eq!(
            approval_roots(&[resolved(&ws.0.join("escape").join("deep").join("x"))]),
            std::slice::from_ref(&outside.0)
        );
    }

    #[test]
    fn carve_outs_stay_read_only() {
        let ws = Scratch::canonical("scope-carve");
        std::fs::create_dir(ws.0.join(".git")).unwrap();
        let real = resolved(&ws.0.join(".git").join("config"));
        assert!(!is_writable(&workspace(), &ws.0, &real));
        assert!(is_writable(
            &workspace(),
            &ws.0,
            &resolved(&ws.0.join("src.rs"))
        ));
    }

    #[test]
    fn approved_patches_keep_a_sandbox() {
        let roots = [PathBuf::from("/approved")];
        assert_eq!(
            approved_policy(&SandboxPolicy::ReadOnly, &roots),
            SandboxPolicy::WorkspaceWrite {
                writable_roots: roots.to_vec(),
                network_access: false,
                exclude_tmpdir_env_var: true,
                exclude_slash_tmp: true,
            }
        );
        let current = SandboxPolicy::WorkspaceWrite {
            writable_roots: vec![PathBuf::from("/mine")],
            network_access: true,
            exclude_tmpdir_env_var: false,
            exclude_slash_tmp: true,
        };
        assert_eq!(
            approved_policy(&current, &roots),
            SandboxPolicy::WorkspaceWrite {
                writable_roots: vec![PathBuf::from("/mine"), PathBuf::from("/approved")],
                network_access: true,
                exclude_tmpdir_env_var: false,
                exclude_slash_tmp: true,
            }
        );
        assert_eq!(
            approved_policy(&SandboxPolicy::DangerFullAccess, &roots),
            SandboxPolicy::DangerFullAccess
        );
    }
}
