//! Read-only carve-outs on Linux (sandbox.md §1 decision, §2 step 2): a private mount namespace in
//! which each carve-out is bind-mounted onto itself and remounted read-only.
//!
//! Inside it, writes beneath a carve-out fail with `EROFS`, and the carve-out itself cannot be
//! removed or renamed (a mount point: `EBUSY`). Nothing propagates back to the host: `/` is made
//! a slave mount first. As root a plain `unshare(CLONE_NEWNS)` is enough; otherwise (or when root
//! lacks `CAP_SYS_ADMIN`) an unprivileged user namespace maps our own uid/gid onto themselves. The
//! later Landlock step forbids unmounting, so the sandboxed command cannot undo this.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The carve-outs that could not be protected, and why.
#[derive(Debug)]
pub(crate) struct Unprotected {
    /// Paths left writable (within their writable root).
    pub paths: Vec<PathBuf>,
    /// What failed, for the warning.
    pub reason: String,
}

/// Enters a private mount namespace and makes every path of `carve_outs` read-only in it. On
/// failure the paths not protected are returned; the caller warns and carries on.
pub(crate) fn protect(carve_outs: &[PathBuf]) -> Result<(), Unprotected> {
    if let Err(e) = enter_private_namespace() {
        return Err(Unprotected {
            paths: carve_outs.to_vec(),
            reason: format!("cannot create a private mount namespace: {e}"),
        });
    }
    let mut failed = Vec::new();
    let mut reason = String::new();
    for path in carve_outs {
        if let Err(e) = bind_read_only(path) {
            if reason.is_empty() {
                reason = format!("cannot make {} read-only: {e}", path.display());
            }
            failed.push(path.clone());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Unprotected {
            paths: failed,
            reason,
        })
    }
}

fn enter_private_namespace() -> io::Result<()> {
    // SAFETY: geteuid/getegid have no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    // SAFETY: unshare only changes this (single-threaded) process's namespaces.
    let plain = uid == 0 && unsafe { libc::unshare(libc::CLONE_NEWNS) } == 0;
    if !plain {
        // SAFETY: as above; CLONE_NEWUSER needs a single-threaded caller, which the helper is.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) } != 0 {
            return Err(io::Error::last_os_error());
        }
        std::fs::write("/proc/self/setgroups", "deny")?;
        std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
        std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    }
    mount(None, Path::new("/"), libc::MS_REC | libc::MS_SLAVE)
}

fn bind_read_only(path: &Path) -> io::Result<()> {
    mount(Some(path), path, libc::MS_BIND | libc::MS_REC)?;
    // A remount must keep the flags the kernel locked on the original mount (nosuid, nodev, …),
    // or it fails with EPERM inside a user namespace.
    let kept = mount_flags(path)?;
    mount(
        None,
        path,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | kept,
    )
}

/// The per-mount flags of the mount holding `path`, in `MS_*` terms.
fn mount_flags(path: &Path) -> io::Result<libc::c_ulong> {
    let c_path = c_path(path)?;
    // SAFETY: an all-zero statvfs is a valid value for the kernel to overwrite.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is NUL-terminated and `st` is a valid, writable statvfs.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    const PAIRS: [(libc::c_ulong, libc::c_ulong); 6] = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ];
    Ok(PAIRS
        .iter()
        .filter(|(st_flag, _)| st.f_flag & st_flag != 0)
        .fold(0, |acc, (_, ms_flag)| acc | ms_flag))
}

fn mount(source: Option<&Path>, target: &Path, flags: libc::c_ulong) -> io::Result<()> {
    let source = source.map(c_path).transpose()?;
    let target = c_path(target)?;
    let source_ptr = source.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is either null (allowed for these flag combinations) or a valid
    // NUL-terminated string that lives across the call.
    let rc = unsafe {
        libc::mount(
            source_ptr,
            target.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}
