//! The filesystem a sandboxed command sees (hardening.md §1), built inside the helper's own mount
//! namespace by the namespace's first process, before anything is dropped:
//!
//! 1. `/` becomes a slave mount (nothing propagates back to the host), then every mount is made
//!    read-only at once (`mount_setattr(AT_RECURSIVE)`), hidden ones included: data and metadata
//!    (chmod, chown, utimes, xattrs, chattr) outside the writable roots fail with `EROFS`;
//! 2. each writable root, and each directory that must not be renamed (the plan's pins), is bound
//!    onto itself and made read-write again where the host mount was read-write (its sub-mounts
//!    too), shallowest first;
//! 3. each carve-out is bound onto itself read-only on top (a symlink is bound as the link, so it
//!    cannot be swapped), then each placeholder gets an empty read-only tmpfs;
//! 4. a fresh `/proc` for the new PID namespace, with `sys`, `sysrq-trigger`, `irq` and `bus`
//!    read-only; a minimal `/dev` (null, zero, full, random, urandom, tty, a private `pts` and
//!    `shm`), itself read-only;
//! 5. back to the working directory, now through the new mounts.
//!
//! Every step that weakens the promise if it fails is an error (the command does not run); a
//! missing `/proc` or `/dev/pts` only costs convenience and is a warning.

use std::path::{Path, PathBuf};

use super::mounts::{self, MountEntry};
use super::plan::Plan;

/// Device nodes of the minimal `/dev`, bound from the host's.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// `/proc` entries that stay read-only (kernel tunables and triggers).
const PROC_READ_ONLY: [&str; 4] = ["sys", "sysrq-trigger", "irq", "bus"];

/// Builds the view for `plan` (placeholders already created at `placeholders`), then changes to
/// `cwd`. `user_namespace` says whether the helper made its own user namespace (then the limit of
/// nested user namespaces can be set to zero without touching the host's). Returns warnings.
pub(crate) fn build(
    plan: &Plan,
    placeholders: &[PathBuf],
    user_namespace: bool,
    cwd: &Path,
) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    let root = Path::new("/");
    mounts::mount(None, root, None, libc::MS_REC | libc::MS_SLAVE, None)
        .map_err(|e| format!("cannot make / a slave mount: {e}"))?;
    let host = mounts::current_mounts().map_err(|e| format!("reading mountinfo: {e}"))?;
    // Device trees must be taken before /dev is covered.
    let devices = clone_devices(plan, &mut warnings);
    let everything_writable = plan.writable.iter().any(|w| w == root);
    if !everything_writable {
        mounts::set_read_only(root, true, true, false).map_err(|e| {
            format!("cannot make the filesystem read-only (mount_setattr needs Linux 5.12): {e}")
        })?;
        let mut writable: Vec<&PathBuf> = plan.writable.iter().chain(&plan.pins).collect();
        writable.sort_by_key(|p| p.components().count());
        for path in writable {
            bind_writable(path, &host)
                .map_err(|e| format!("cannot bind the writable root {}: {e}", path.display()))?;
        }
    }
    for path in &plan.read_only {
        bind_read_only(path)
            .map_err(|e| format!("cannot make {} read-only: {e}", path.display()))?;
    }
    for path in placeholders {
        mounts::mount(
            Some(Path::new("tmpfs")),
            path,
            Some("tmpfs"),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            Some("size=4k,mode=555"),
        )
        .map_err(|e| format!("cannot mask {}: {e}", path.display()))?;
    }
    mount_proc(user_namespace, &mut warnings)?;
    build_dev(devices, &host, &mut warnings)?;
    std::env::set_current_dir(cwd)
        .map_err(|e| format!("cannot enter the working directory {}: {e}", cwd.display()))?;
    Ok(warnings)
}

/// Binds `path` onto itself and clears the read-only flag on it and on the mounts beneath it
/// that were read-write on the host.
fn bind_writable(path: &Path, host: &[MountEntry]) -> std::io::Result<()> {
    mounts::bind_onto_itself(path)?;
    if !mounts::was_read_only(host, path) {
        mounts::set_read_only(path, false, false, false)?;
    }
    for sub in host
        .iter()
        .filter(|m| m.mount_point.starts_with(path) && m.mount_point != path)
    {
        if !mounts::was_read_only(host, &sub.mount_point) {
            // A sub-mount hidden by a later mount at the same place is not reachable: skip it.
            let _ = mounts::set_read_only(&sub.mount_point, false, false, false);
        }
    }
    Ok(())
}

/// Binds `path` (the link itself when it is a symlink) onto itself, read-only with everything
/// beneath it.
fn bind_read_only(path: &Path) -> std::io::Result<()> {
    let is_link = std::fs::symlink_metadata(path)?.file_type().is_symlink();
    if is_link {
        let tree = mounts::clone_tree(path, true)?;
        mounts::attach(&tree, path)?;
    } else {
        mounts::bind_onto_itself(path)?;
    }
    mounts::set_read_only(path, true, true, is_link)
}

/// The host trees the minimal `/dev` is made of, taken while the host's `/dev` is visible.
struct Devices {
    nodes: Vec<(&'static str, std::os::fd::OwnedFd)>,
    /// The host's `/dev/shm` when a writable root lies in it (e.g. `TMPDIR=/dev/shm`).
    host_shm: Option<std::os::fd::OwnedFd>,
}

fn clone_devices(plan: &Plan, warnings: &mut Vec<String>) -> Devices {
    let mut nodes = Vec::new();
    for name in DEVICES {
        let path = Path::new("/dev").join(name);
        match mounts::clone_tree(&path, false) {
            Ok(fd) => nodes.push((name, fd)),
            Err(e) => warnings.push(format!("no {} in the sandbox: {e}", path.display())),
        }
    }
    let shm = Path::new("/dev/shm");
    let mut host_shm = None;
    for root in plan.writable.iter().filter(|w| w.starts_with("/dev")) {
        if root.starts_with(shm) && host_shm.is_none() {
            host_shm = mounts::clone_tree(shm, false).ok();
        } else if !root.starts_with(shm) {
            warnings.push(format!(
                "the writable root {} is not available under the sandbox's minimal /dev",
                root.display()
            ));
        }
    }
    Devices { nodes, host_shm }
}

fn mount_proc(user_namespace: bool, warnings: &mut Vec<String>) -> Result<(), String> {
    let proc = Path::new("/proc");
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    if let Err(e) = mounts::mount(Some(Path::new("proc")), proc, Some("proc"), flags, None) {
        warnings.push(format!(
            "cannot mount a fresh /proc ({e}): the host's stays, read-only, and shows host \
             processes"
        ));
        return Ok(());
    }
    if user_namespace {
        // Per user namespace: no nested ones below ours (seccomp refuses them as well).
        let _ = std::fs::write("/proc/sys/user/max_user_namespaces", "0");
    }
    for name in PROC_READ_ONLY {
        let path = proc.join(name);
        if path.exists() {
            bind_read_only(&path)
                .map_err(|e| format!("cannot make {} read-only: {e}", path.display()))?;
        }
    }
    Ok(())
}

fn build_dev(
    devices: Devices,
    host: &[MountEntry],
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let dev = Path::new("/dev");
    let fail = |what: &str, e: std::io::Error| format!("cannot build /dev: {what}: {e}");
    mounts::mount(
        Some(Path::new("tmpfs")),
        dev,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("mode=755,size=64k"),
    )
    .map_err(|e| fail("tmpfs", e))?;
    for (name, tree) in &devices.nodes {
        let path = dev.join(name);
        std::fs::write(&path, b"").map_err(|e| fail(name, e))?;
        mounts::attach(tree, &path).map_err(|e| fail(name, e))?;
    }
    let pts = dev.join("pts");
    std::fs::create_dir(&pts).map_err(|e| fail("pts", e))?;
    match mounts::mount(
        Some(Path::new("devpts")),
        &pts,
        Some("devpts"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=620"),
    ) {
        Ok(()) => {
            std::os::unix::fs::symlink("pts/ptmx", dev.join("ptmx")).map_err(|e| fail("ptmx", e))?
        }
        Err(e) => warnings.push(format!("no pseudo-terminals in the sandbox: devpts: {e}")),
    }
    let shm = dev.join("shm");
    std::fs::create_dir(&shm).map_err(|e| fail("shm", e))?;
    match &devices.host_shm {
        Some(tree) => {
            mounts::attach(tree, &shm).map_err(|e| fail("shm", e))?;
            if !mounts::was_read_only(host, &shm) {
                mounts::set_read_only(&shm, false, false, false).map_err(|e| fail("shm", e))?;
            }
        }
        None => mounts::mount(
            Some(Path::new("tmpfs")),
            &shm,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some("mode=1777"),
        )
        .map_err(|e| fail("shm", e))?,
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link)).map_err(|e| fail(link, e))?;
    }
    mounts::set_read_only(dev, true, false, false).map_err(|e| fail("read-only", e))
}

/// The device paths a command may open for writing in this view (for Landlock): the nodes that
/// are harmless to write, the private pseudo-terminals and `/dev/shm`.
pub(crate) fn writable_devices() -> Vec<PathBuf> {
    ["zero", "full", "tty", "ptmx", "pts", "shm"]
        .iter()
        .map(|name| Path::new("/dev").join(name))
        .collect()
}
