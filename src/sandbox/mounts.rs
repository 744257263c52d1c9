//! Mount primitives of the Linux helper (bind, remount read-only or read-write through
//! `mount_setattr`, clone and attach trees through `open_tree`/`move_mount`, fresh filesystems),
//! the parser of `/proc/self/mountinfo`, and the carve-out protection of the degraded mode.
//!
//! The namespace mode builds its whole view with these (`view.rs`). The degraded mode (no
//! namespaces allowed: `[sandbox_linux] allow_without_namespaces`) keeps the round-1 behaviour:
//! it tries a private mount namespace in which each carve-out is bound onto itself read-only
//! ([`protect`]); as root a plain `unshare(CLONE_NEWNS)` is enough, otherwise an unprivileged user
//! namespace maps our own uid/gid onto themselves.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// `struct mount_attr` of linux/mount.h (`mount_setattr`).
#[repr(C)]
#[derive(Default)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `MOUNT_ATTR_RDONLY`.
const MOUNT_ATTR_RDONLY: u64 = 0x1;
/// `OPEN_TREE_CLONE` (`open_tree` makes a detached copy).
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `MOVE_MOUNT_F_EMPTY_PATH` (the source is the fd itself).
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// One line of `/proc/self/mountinfo`, reduced to what the helper needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountEntry {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Whether the mount itself (not its filesystem) is read-only.
    pub read_only: bool,
}

/// Parses mountinfo text; lines that do not parse are skipped.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let mount_point = fields.nth(4)?;
            let options = fields.next()?;
            Some(MountEntry {
                mount_point: PathBuf::from(OsString::from_vec(unescape(mount_point))),
                read_only: options.split(',').next() == Some("ro"),
            })
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// This namespace's mounts, in mountinfo order (parents before the mounts on top of them).
pub(crate) fn current_mounts() -> io::Result<Vec<MountEntry>> {
    Ok(parse_mountinfo(&std::fs::read_to_string(
        "/proc/self/mountinfo",
    )?))
}

/// Whether the mount that holds `path` was read-only in `mounts` (the deepest mount point above
/// it; the last one listed when several share it, which is the one on top).
pub(crate) fn was_read_only(mounts: &[MountEntry], path: &Path) -> bool {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.components().count())
        .map(|deepest| {
            mounts
                .iter()
                .rev()
                .find(|m| m.mount_point == deepest.mount_point)
                .is_some_and(|m| m.read_only)
        })
        .unwrap_or(false)
}

pub(crate) fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn check(rc: libc::c_long) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `mount(2)` with optional source, filesystem type and data.
pub(crate) fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = source.map(c_path).transpose()?;
    let target = c_path(target)?;
    let fstype = fstype.map(CString::new).transpose()?;
    let data = data.map(CString::new).transpose()?;
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is null (allowed for these uses) or a NUL-terminated string that lives
    // across the call.
    let rc = unsafe {
        libc::mount(
            ptr(&source),
            target.as_ptr(),
            ptr(&fstype),
            flags,
            ptr(&data).cast(),
        )
    };
    check(rc.into())
}

/// Binds `path` onto itself with everything mounted beneath it, making it a mount point.
pub(crate) fn bind_onto_itself(path: &Path) -> io::Result<()> {
    mount(Some(path), path, None, libc::MS_BIND | libc::MS_REC, None)
}

/// Sets (`read_only`) or clears the read-only flag of the mount at `path`, and with `recursive`
/// of every mount beneath it. `no_follow` acts on a symlink itself.
pub(crate) fn set_read_only(
    path: &Path,
    read_only: bool,
    recursive: bool,
    no_follow: bool,
) -> io::Result<()> {
    let c = c_path(path)?;
    let mut attr = MountAttr::default();
    if read_only {
        attr.attr_set = MOUNT_ATTR_RDONLY;
    } else {
        attr.attr_clr = MOUNT_ATTR_RDONLY;
    }
    let mut flags = 0;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    if no_follow {
        flags |= libc::AT_SYMLINK_NOFOLLOW;
    }
    // SAFETY: `c` is NUL-terminated and `attr` has the kernel's layout; both outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(rc)
}

/// A detached copy of the mount tree at `path` (the symlink itself with `no_follow`), to attach
/// elsewhere with [`attach`].
pub(crate) fn clone_tree(path: &Path, no_follow: bool) -> io::Result<OwnedFd> {
    let c = c_path(path)?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_RECURSIVE as u32;
    if no_follow {
        flags |= libc::AT_SYMLINK_NOFOLLOW as libc::c_uint;
    }
    // SAFETY: `c` is NUL-terminated; open_tree returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    let fd = i32::try_from(fd)
        .ok()
        .filter(|fd| *fd >= 0)
        .ok_or_else(io::Error::last_os_error)?;
    // SAFETY: a fresh fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Attaches a tree from [`clone_tree`] at `target` (not following a symlink there).
pub(crate) fn attach(tree: &OwnedFd, target: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let c = c_path(target)?;
    let empty = c"";
    // SAFETY: both strings are NUL-terminated; the fd is open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    check(rc)
}

// ---- the degraded mode ----

/// The carve-outs that could not be protected, and why.
#[derive(Debug)]
pub(crate) struct Unprotected {
    /// Paths left writable (within their writable root).
    pub paths: Vec<PathBuf>,
    /// What failed, for the warning.
    pub reason: String,
}

/// Enters a private mount namespace and makes every existing path of `carve_outs` read-only in
/// it. On failure the paths not protected are returned; the caller warns and carries on.
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
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_SLAVE,
        None,
    )
}

fn bind_read_only(path: &Path) -> io::Result<()> {
    bind_onto_itself(path)?;
    set_read_only(path, true, true, false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
28 27 0:25 / /mnt/tools ro,nosuid,nodev,relatime - tmpfs none ro,size=4k
29 27 0:26 / /tmp rw,nosuid shared:5 - tmpfs tmpfs rw
30 29 0:27 / /tmp/with\\040space ro - tmpfs tmpfs rw
31 27 0:28 / /mnt/tools rw,relatime - tmpfs over rw
garbage line
";

    #[test]
    fn mountinfo_lines() {
        let mounts = parse_mountinfo(SAMPLE);
        let points: Vec<(&str, bool)> = mounts
            .iter()
            .map(|m| (m.mount_point.to_str().unwrap(), m.read_only))
            .collect();
        assert_eq!(
            points,
            [
                ("/proc", false),
                ("/", false),
                ("/mnt/tools", true),
                ("/tmp", false),
                ("/tmp/with space", true),
                ("/mnt/tools", false),
            ]
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"a\040b\011c\012d\134e"), b"a b\tc\nd\\e");
        assert_eq!(unescape(r"\04"), b"\\04");
        assert_eq!(unescape(r"\999x"), b"\\999x");
        assert_eq!(unescape(r"\777"), b"?");
    }

    #[test]
    fn read_only_lookup_takes_the_deepest_and_topmost_mount() {
        let mounts = parse_mountinfo(SAMPLE);
        let ro = |p: &str| was_read_only(&mounts, Path::new(p));
        assert!(!ro("/work/repo"));
        assert!(!ro("/tmp/x"));
        assert!(ro("/tmp/with space/x"));
        // Two mounts at /mnt/tools: the later (on top) is read-write.
        assert!(!ro("/mnt/tools/bin"));
        assert!(!ro("/"));
    }
}
