//! What the Linux helper builds for one command, computed from the policy before anything is
//! confined: the canonical writable roots, the read-only carve-outs that lie in them (or contain
//! them), the protected names that do not exist yet and need a placeholder, and the directories
//! that must become mount points so that nobody can rename them away.
//!
//! Pure path logic over the filesystem as it is now; the mounts themselves are `mounts.rs`.

use std::path::{Component, Path, PathBuf};

use super::SandboxPolicy;

/// The helper's view of one command, in canonical paths.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Plan {
    /// Existing writable roots, canonical, without duplicates, shallowest first.
    pub writable: Vec<PathBuf>,
    /// Directories strictly between a writable root and something protected or writable below
    /// it: bound onto themselves (and so made mount points) so that they cannot be renamed and
    /// re-created with other contents. Shallowest first.
    pub pins: Vec<PathBuf>,
    /// Existing carve-outs that a writable root would otherwise expose, canonical except that a
    /// symlink stays the link itself (its target is listed on its own). Shallowest first.
    pub read_only: Vec<PathBuf>,
    /// Protected names (`.git`, `.codex`, `.agents`) missing beneath a writable root, or standing
    /// there as another helper's placeholder: each gets an empty read-only placeholder for the
    /// command's lifetime.
    pub absent: Vec<PathBuf>,
    /// Whether the command may use the network.
    pub network: bool,
}

impl Plan {
    /// The plan for `policy` with its roots computed against `policy_cwd`, plus `codex_home`
    /// (read-only whatever the policy) when given.
    pub(crate) fn new(
        policy: &SandboxPolicy,
        policy_cwd: &Path,
        codex_home: Option<&Path>,
    ) -> Self {
        let roots = policy.writable_roots(policy_cwd);
        let mut writable: Vec<PathBuf> = Vec::new();
        for root in &roots {
            if let Ok(real) = std::fs::canonicalize(&root.root)
                && real.is_dir()
                && !writable.contains(&real)
            {
                writable.push(real);
            }
        }
        sort_shallow_first(&mut writable);
        let mut candidates: Vec<PathBuf> = roots
            .iter()
            .flat_map(|r| r.read_only_subpaths.iter())
            .filter_map(|p| canonical_leaf(p))
            .collect();
        if let Some(home) = codex_home.and_then(|h| std::fs::canonicalize(h).ok()) {
            candidates.push(home);
        }
        let mut read_only = Vec::new();
        let mut absent = Vec::new();
        for path in candidates {
            let overlaps = writable
                .iter()
                .any(|w| path.starts_with(w) || w.starts_with(&path));
            if !overlaps || read_only.contains(&path) || absent.contains(&path) {
                continue;
            }
            let placeholder = super::placeholders::is_placeholder_at(&path);
            if std::fs::symlink_metadata(&path).is_ok() && !placeholder {
                read_only.push(path);
            } else if path.parent().is_some_and(Path::is_dir) {
                absent.push(path);
            }
        }
        sort_shallow_first(&mut read_only);
        let mut pins = Vec::new();
        let protected = read_only.iter().chain(&absent).chain(&writable);
        for path in protected {
            let Some(outer) = writable.iter().find(|w| path.starts_with(w) && *w != path) else {
                continue;
            };
            for dir in path.ancestors().skip(1) {
                if dir == outer.as_path() || !dir.starts_with(outer) {
                    break;
                }
                if !writable.iter().any(|w| w == dir) && !pins.iter().any(|p: &PathBuf| p == dir) {
                    pins.push(dir.to_path_buf());
                }
            }
        }
        sort_shallow_first(&mut pins);
        Plan {
            writable,
            pins,
            read_only,
            absent,
            network: policy.has_network(),
        }
    }
}

/// `path` with its parent canonicalized and its last component kept as is (so a symlink stays
/// the link, and a missing entry keeps its name); `None` when the parent does not resolve.
fn canonical_leaf(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let parent = std::fs::canonicalize(path.parent()?).ok()?;
    Some(parent.join(name))
}

fn depth(path: &Path) -> usize {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count()
}

fn sort_shallow_first(paths: &mut [PathBuf]) {
    paths.sort_by(|a, b| depth(a).cmp(&depth(b)).then_with(|| a.cmp(b)));
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::test_dir::Scratch;

    fn workspace(roots: Vec<PathBuf>) -> SandboxPolicy {
        SandboxPolicy::WorkspaceWrite {
            writable_roots: roots,
            network_access: false,
            exclude_tmpdir_env_var: true,
            exclude_slash_tmp: true,
        }
    }

    #[test]
    fn carve_outs_placeholders_and_pins() {
        let s = Scratch::canonical("plan-all");
        let outer = s.0.join("outer");
        let repo = outer.join("a/b/repo");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        std::os::unix::fs::symlink("../../../../elsewhere", repo.join(".codex")).unwrap();
        std::fs::create_dir_all(s.0.join("elsewhere")).unwrap();
        let home = repo.join("home");
        std::fs::create_dir(&home).unwrap();
        let plan = Plan::new(&workspace(vec![outer.clone()]), &repo, Some(&home));
        assert_eq!(plan.writable, vec![outer.clone(), repo.clone()]);
        assert_eq!(
            plan.read_only,
            vec![repo.join(".codex"), repo.join(".git"), home.clone()]
        );
        // The symlink's target lies outside every writable root: read-only already.
        assert!(!plan.read_only.contains(&s.0.join("elsewhere")));
        assert_eq!(
            plan.absent,
            vec![
                outer.join(".git"),
                outer.join(".codex"),
                outer.join(".agents"),
                repo.join(".agents"),
            ]
        );
        assert_eq!(plan.pins, vec![outer.join("a"), outer.join("a/b")]);
        assert!(!plan.network);
    }

    #[test]
    fn read_only_policy_protects_nothing_extra() {
        let s = Scratch::canonical("plan-ro");
        let plan = Plan::new(&SandboxPolicy::ReadOnly, &s.0, Some(&s.0));
        assert_eq!(plan, Plan::default());
    }

    #[test]
    fn codex_home_containing_a_root_is_still_read_only() {
        let s = Scratch::canonical("plan-home");
        let cwd = s.0.join("work");
        std::fs::create_dir(&cwd).unwrap();
        let plan = Plan::new(&workspace(vec![]), &cwd, Some(&s.0));
        assert_eq!(plan.read_only, vec![s.0.clone()]);
    }

    #[test]
    fn missing_roots_are_skipped_and_leaves_keep_their_names() {
        let s = Scratch::canonical("plan-leaf");
        let plan = Plan::new(&workspace(vec![s.0.join("missing")]), &s.0, None);
        assert_eq!(plan.writable, vec![s.0.clone()]);
        assert_eq!(canonical_leaf(Path::new("/nonexistent/dir/x")), None);
        assert_eq!(
            canonical_leaf(&s.0.join("x/../y")),
            None,
            "a parent that does not resolve"
        );
    }
}
