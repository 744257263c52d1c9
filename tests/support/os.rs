//! The few OS-specific pieces the tests need, behind one seam so test bodies stay portable.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Makes `dir/name` run `target` (a symlink on Unix; a hard link or copy named `name.exe` on
/// Windows); returns the path to run.
pub fn link_executable(target: &Path, dir: &Path, name: &str) -> PathBuf {
    let link = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, &link).unwrap();
    #[cfg(windows)]
    std::fs::hard_link(target, &link)
        .or_else(|_| std::fs::copy(target, &link).map(|_| ()))
        .unwrap();
    link
}

/// An argument that is not valid Unicode (bytes `* FF FE` on Unix, an unpaired surrogate on
/// Windows).
pub fn non_unicode_arg() -> OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        OsString::from_vec(vec![b'*', 0xff, 0xfe])
    }
    #[cfg(windows)]
    {
        use std::os::windows::ffi::OsStringExt;
        OsString::from_wide(&[u16::from(b'*'), 0xD800])
    }
}

/// The permission bits of `path` (`None` on Windows, which has ACLs instead).
pub fn mode_bits(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Some(std::fs::metadata(path).unwrap().permissions().mode() & 0o777)
    }
    #[cfg(windows)]
    {
        let _ = path;
        None
    }
}

/// Pids of the live processes (zombies left out: they have ended, only their reaping is left)
/// whose command line (`/proc/<pid>/cmdline`, arguments NUL-separated) `keep` accepts. Empty
/// where there is no `/proc` (macOS).
#[cfg(unix)]
pub fn live_processes(keep: impl Fn(&[u8]) -> bool) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            !zombie && keep(&cmdline)
        })
        .collect()
}

/// Pids of the live processes whose command line mentions `needle` anywhere.
#[cfg(unix)]
pub fn processes_naming(needle: &str) -> Vec<u32> {
    live_processes(|cmdline| {
        cmdline
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    })
}

/// Makes our descriptor `fd` descriptor `at` in the process `command` starts, not close-on-exec
/// (what a parent that leaks a descriptor does).
#[cfg(unix)]
pub fn inherit_fd(command: &mut std::process::Command, fd: i32, at: i32) {
    use std::os::unix::process::CommandExt;
    // SAFETY: dup2 and fcntl are async-signal-safe and allocate nothing.
    unsafe {
        command.pre_exec(move || {
            // dup2 onto itself keeps the close-on-exec flag: clear it then.
            let rc = if fd == at {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, at)
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
