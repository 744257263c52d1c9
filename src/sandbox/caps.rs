//! Dropping capabilities before the command runs.
//!
//! With namespaces ([`drop_all`], hardening.md §1): every capability goes, from every set
//! (bounding, inheritable, effective, permitted, ambient), and the securebits are locked so that
//! executing anything as uid 0 never grants them back. A root command is then a plain uid 0: it
//! keeps what file ownership gives it (root-owned workspaces stay writable), nothing more.
//!
//! In the degraded mode without namespaces ([`drop_bypass_capabilities`]) only the capabilities
//! that walk around the read-only carve-outs go: `CAP_DAC_READ_SEARCH` allows `open_by_handle_at`
//! through the original, writable mount; `CAP_MKNOD` allows a block-device node inside a writable
//! root; `CAP_SYS_MODULE` and `CAP_SYS_RAWIO` reach the kernel or the disk directly.

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

/// The highest capability number any kernel defines today is 40; the bounding set is probed up
/// to here and the kernel's own limit (`EINVAL`) ends the loop.
const MAX_CAPABILITY: u32 = 63;

/// Drops every capability of this process for good: the bounding set (needs `CAP_SETPCAP`, which
/// the helper has as root or in its own user namespace), the ambient set, then effective,
/// permitted and inheritable; the securebits are set and locked first so that no later `execve`,
/// even of a root-owned or file-capability binary, gives any back. Checked afterwards.
pub(crate) fn drop_all() -> io::Result<()> {
    let securebits = libc::SECBIT_NOROOT
        | libc::SECBIT_NOROOT_LOCKED
        | libc::SECBIT_NO_SETUID_FIXUP
        | libc::SECBIT_NO_SETUID_FIXUP_LOCKED
        | libc::SECBIT_KEEP_CAPS_LOCKED
        | libc::SECBIT_NO_CAP_AMBIENT_RAISE
        | libc::SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    // SAFETY: PR_SET_SECUREBITS takes an integer and only affects this process.
    if unsafe {
        libc::prctl(
            libc::PR_SET_SECUREBITS,
            securebits as libc::c_ulong,
            0,
            0,
            0,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    for cap in 0..=MAX_CAPABILITY {
        // SAFETY: PR_CAPBSET_READ/DROP take a capability number and only affect this process.
        let present = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong) };
        if present < 0 {
            break;
        }
        if present == 1 && unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong) } != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    clear_ambient();
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: `header` and `data` have the kernel's layout for version 3 (two data elements).
    if unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut check = [CapData::default(); 2];
    // SAFETY: as above.
    if unsafe { libc::syscall(libc::SYS_capget, &mut header, check.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: PR_CAPBSET_READ of capability 0 only reads.
    let bounding_left = unsafe { libc::prctl(libc::PR_CAPBSET_READ, 0) } == 1;
    if check
        .iter()
        .any(|d| d.effective | d.permitted | d.inheritable != 0)
        || bounding_left
    {
        return Err(io::Error::other(
            "capabilities are still present after dropping them",
        ));
    }
    Ok(())
}

fn clear_ambient() {
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
    clear_ambient();
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
