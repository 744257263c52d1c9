//! Descriptors inherited from our parent made close-on-exec, so commands we spawn never
//! inherit them: `close_range` where the kernel has it, else each listed descriptor, else every
//! number up to the open-files limit.

/// Where the kernel lists this process's open descriptors.
#[cfg(target_os = "linux")]
const FD_DIR: &str = "/proc/self/fd";
/// Where the kernel lists this process's open descriptors.
#[cfg(not(target_os = "linux"))]
const FD_DIR: &str = "/dev/fd";

/// Highest descriptor the last-resort walk looks at when the descriptor directory cannot be
/// read and the open-files limit is unlimited.
const MAX_WALKED_FD: libc::c_int = 65_536;

/// Every descriptor above 2 close-on-exec: one `close_range(3, ~0, CLOSE_RANGE_CLOEXEC)` on
/// Linux 5.11 and later; else each descriptor [`FD_DIR`] lists, or failing that every number
/// up to the open-files limit.
pub(in crate::platform) fn keep_inherited_descriptors_from_children() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: close_range with the CLOEXEC flag only sets a flag on open descriptors.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
        if rc == 0 {
            return;
        }
    }
    cloexec_each_descriptor();
}

/// Sets close-on-exec on each descriptor above 2, one `fcntl` at a time.
pub(in crate::platform) fn cloexec_each_descriptor() {
    match listed_descriptors() {
        Some(fds) => fds.into_iter().for_each(set_cloexec),
        None => (3..open_files_limit()).for_each(set_cloexec),
    }
}

/// The descriptors above 2 that [`FD_DIR`] lists (the listing's own one included, which is
/// closed by the time the caller uses the list); `None` when it cannot be read.
fn listed_descriptors() -> Option<Vec<libc::c_int>> {
    let entries = std::fs::read_dir(FD_DIR).ok()?;
    Some(
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|fd| *fd > 2)
            .collect(),
    )
}

/// The soft open-files limit, at most [`MAX_WALKED_FD`].
fn open_files_limit() -> libc::c_int {
    // SAFETY: a zeroed rlimit is valid storage for getrlimit to fill.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `limit` is valid for writes.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return MAX_WALKED_FD;
    }
    libc::c_int::try_from(limit.rlim_cur)
        .unwrap_or(MAX_WALKED_FD)
        .min(MAX_WALKED_FD)
}

/// Adds close-on-exec to `fd` if it is open and lacks it.
fn set_cloexec(fd: libc::c_int) {
    // SAFETY: fcntl on a number that may not be open: it then fails with EBADF, checked.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}
