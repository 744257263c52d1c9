//! Dropping the capabilities that would let a root command walk around the read-only carve-outs
//! (a hardening beyond sandbox.md, for helpers run as root, e.g. in containers).
//!
//! Landlock and the read-only bind mounts stop ordinary writes, but root keeps capabilities across
//! `execve` that defeat them: `CAP_DAC_READ_SEARCH` allows `open_by_handle_at` through the
//! original, writable mount; `CAP_MKNOD` allows a block-device node inside a writable root;
//! `CAP_SYS_MODULE` and `CAP_SYS_RAWIO` reach the kernel or the disk directly. They are removed
//! from the bounding, inheritable, effective, permitted and ambient sets, so the command never
//! gets them back. Everything else root can do stays, so root-owned workspaces keep working.

use std::io;

/// `CAP_DAC_READ_SEARCH`, `CAP_SYS_MODULE`, `CAP_SYS_RAWIO`, `CAP_MKNOD` (linux/capability.h).
const BYPASS_CAPABILITIES: [u32; 4] = [2, 16, 17, 27];

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Removes [`BYPASS_CAPABILITIES`] from every capability set of this process. A process that
/// cannot change its bounding set (no `CAP_SETPCAP`) has nothing to drop there: an unprivileged
/// helper loses all capabilities at `execve` anyway.
pub(crate) fn drop_bypass_capabilities() -> io::Result<()> {
    for cap in BYPASS_CAPABILITIES {
        // SAFETY: PR_CAPBSET_READ/DROP take a capability number and only affect this process.
        let in_bounding = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong) } == 1;
        if in_bounding && unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong) } != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EPERM) {
                return Err(err);
            }
        }
    }
    // SAFETY: clearing the ambient set takes no pointers and cannot widen privileges.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: `header` and `data` have the kernel's layout for version 3 (two data elements).
    if unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut changed = false;
    for cap in BYPASS_CAPABILITIES {
        let (word, bit) = ((cap / 32) as usize, 1u32 << (cap % 32));
        let d = &mut data[word];
        if (d.effective | d.permitted | d.inheritable) & bit != 0 {
            d.effective &= !bit;
            d.permitted &= !bit;
            d.inheritable &= !bit;
            changed = true;
        }
    }
    // SAFETY: as for capget; dropping capabilities is always allowed.
    if changed && unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
