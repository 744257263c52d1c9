//! The seccomp network filter of the Linux helper (sandbox.md §2 step 3), as a classic BPF program
//! written with `libc` types, and its installation on the calling thread.
//!
//! The program checks the architecture first and kills any syscall made through a foreign ABI
//! (i386 `int 0x80`, x32), so numbers cannot be smuggled past the table; then it answers `EPERM`
//! for the network syscalls and lets `socket`/`socketpair` through only for `AF_UNIX`. Everything
//! else is allowed. Whether the filter applies at all (network off) is the helper's decision.

use std::io;

use libc::{c_long, sock_filter, sock_fprog};

/// `AUDIT_ARCH_*` of the architecture this binary runs as (linux/audit.h).
#[cfg(target_arch = "x86_64")]
const NATIVE_AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const NATIVE_AUDIT_ARCH: u32 = 0xC000_00B7;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("the seccomp network filter knows x86_64 and aarch64 only");

/// x32 syscalls carry this bit in their number on x86_64 (`__X32_SYSCALL_BIT`).
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Offsets into `struct seccomp_data` (nr, arch, then args[0] whose low word comes first on these
/// little-endian targets; the kernel reads an `int` argument from that low word only).
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARG0_LOW: u32 = 16;

/// The syscalls answered with `EPERM` when the network is off (sandbox.md §2).
pub(crate) const DENIED_SYSCALLS: [c_long; 14] = [
    libc::SYS_connect,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_getpeername,
    libc::SYS_getsockname,
    libc::SYS_shutdown,
    libc::SYS_sendto,
    libc::SYS_sendmmsg,
    libc::SYS_recvmmsg,
    libc::SYS_getsockopt,
    libc::SYS_setsockopt,
    libc::SYS_ptrace,
];

/// The syscalls allowed only when their first argument (the address family) is `AF_UNIX`.
pub(crate) const UNIX_ONLY_SYSCALLS: [c_long; 2] = [libc::SYS_socket, libc::SYS_socketpair];

const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const RET_EPERM: u32 = libc::SECCOMP_RET_ERRNO | (libc::EPERM as u32 & libc::SECCOMP_RET_DATA);
const RET_KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;

fn load_word(offset: u32) -> sock_filter {
    stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset)
}

fn ret(action: u32) -> sock_filter {
    stmt(libc::BPF_RET | libc::BPF_K, action)
}

fn stmt(code: u32, k: u32) -> sock_filter {
    jump(code, k, 0, 0)
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    // BPF opcodes fit in 16 bits by definition; the libc constants are just typed wider.
    sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Distance from the instruction after `from` to `to`, as a BPF jump offset.
fn offset(from: usize, to: usize) -> u8 {
    u8::try_from(to - from - 1).unwrap_or(u8::MAX)
}

/// The filter program (sandbox.md §2 step 3).
pub(crate) fn network_filter() -> Vec<sock_filter> {
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let mut prog = vec![
        load_word(OFFSET_ARCH),
        jump(jeq, NATIVE_AUDIT_ARCH, 1, 0),
        ret(RET_KILL),
        load_word(OFFSET_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        let jge = libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K;
        prog.push(jump(jge, X32_SYSCALL_BIT, 0, 1));
        prog.push(ret(RET_KILL));
    }
    // Layout after the comparisons: allow; check-AF_UNIX (load, compare, allow); deny.
    let first = prog.len();
    let compares = DENIED_SYSCALLS.len() + UNIX_ONLY_SYSCALLS.len();
    let allow = first + compares;
    let check_unix = allow + 1;
    let deny = check_unix + 3;
    for (i, nr) in DENIED_SYSCALLS.iter().enumerate() {
        prog.push(jump(jeq, *nr as u32, offset(first + i, deny), 0));
    }
    for (i, nr) in UNIX_ONLY_SYSCALLS.iter().enumerate() {
        let at = first + DENIED_SYSCALLS.len() + i;
        prog.push(jump(jeq, *nr as u32, offset(at, check_unix), 0));
    }
    prog.push(ret(RET_ALLOW));
    prog.push(load_word(OFFSET_ARG0_LOW));
    prog.push(jump(jeq, libc::AF_UNIX as u32, 0, 1));
    prog.push(ret(RET_ALLOW));
    prog.push(ret(RET_EPERM));
    prog
}

/// Installs `prog` on the calling thread (inherited across `execve`). `PR_SET_NO_NEW_PRIVS` must
/// already be set unless the caller has `CAP_SYS_ADMIN`.
pub(crate) fn install(prog: &[sock_filter]) -> io::Result<()> {
    let len = u16::try_from(prog.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "seccomp program too long"))?;
    let fprog = sock_fprog {
        len,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `prog`, which outlives the call; the kernel copies the program.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const sock_fprog,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Runs the program the way the kernel would for one syscall (only the instructions the
    /// filter uses are understood; anything else fails the test).
    fn run(prog: &[sock_filter], arch: u32, nr: u32, arg0: u64) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        data[16..24].copy_from_slice(&arg0.to_le_bytes());
        let (mut pc, mut acc) = (0usize, 0u32);
        for _ in 0..prog.len() {
            let ins = prog[pc];
            let code = u32::from(ins.code);
            if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS {
                let k = ins.k as usize;
                acc = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
                pc += 1;
            } else if code == libc::BPF_RET | libc::BPF_K {
                return ins.k;
            } else if code == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K {
                pc += 1 + usize::from(if acc == ins.k { ins.jt } else { ins.jf });
            } else if code == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K {
                pc += 1 + usize::from(if acc >= ins.k { ins.jt } else { ins.jf });
            } else {
                panic!("unexpected instruction {code:#x}");
            }
        }
        panic!("program did not return");
    }

    fn native(nr: c_long, arg0: u64) -> u32 {
        run(&network_filter(), NATIVE_AUDIT_ARCH, nr as u32, arg0)
    }

    #[test]
    fn network_syscalls_get_eperm() {
        for nr in DENIED_SYSCALLS {
            assert_eq!(native(nr, 0), RET_EPERM, "syscall {nr}");
        }
        assert_eq!(RET_EPERM & libc::SECCOMP_RET_DATA, libc::EPERM as u32);
    }

    #[test]
    fn sockets_only_for_af_unix() {
        for nr in UNIX_ONLY_SYSCALLS {
            assert_eq!(native(nr, libc::AF_UNIX as u64), RET_ALLOW);
            assert_eq!(native(nr, libc::AF_INET as u64), RET_EPERM);
            assert_eq!(native(nr, libc::AF_INET6 as u64), RET_EPERM);
            assert_eq!(native(nr, libc::AF_NETLINK as u64), RET_EPERM);
            // The kernel reads the family as an int: garbage in the high word changes nothing.
            assert_eq!(native(nr, (1 << 32) | libc::AF_UNIX as u64), RET_ALLOW);
            assert_eq!(native(nr, (1 << 32) | libc::AF_INET as u64), RET_EPERM);
        }
    }

    #[test]
    fn everything_else_is_allowed() {
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_recvfrom,
            libc::SYS_sendmsg,
            libc::SYS_recvmsg,
            libc::SYS_kill,
        ] {
            assert_eq!(native(nr, 0), RET_ALLOW, "syscall {nr}");
        }
    }

    #[test]
    fn foreign_abis_are_killed() {
        const AUDIT_ARCH_I386: u32 = 0x4000_0003;
        const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
        let prog = network_filter();
        // getpid through int 0x80 is number 20 on i386.
        assert_eq!(run(&prog, AUDIT_ARCH_I386, 20, 0), RET_KILL);
        assert_eq!(run(&prog, AUDIT_ARCH_ARM, 20, 0), RET_KILL);
        #[cfg(target_arch = "x86_64")]
        {
            let x32_connect = X32_SYSCALL_BIT | libc::SYS_connect as u32;
            assert_eq!(run(&prog, NATIVE_AUDIT_ARCH, x32_connect, 0), RET_KILL);
            assert_eq!(
                run(&prog, NATIVE_AUDIT_ARCH, X32_SYSCALL_BIT | 39, 0),
                RET_KILL
            );
        }
    }

    #[test]
    fn program_starts_with_the_architecture_check() {
        let prog = network_filter();
        assert_eq!(prog[0].k, OFFSET_ARCH);
        assert_eq!(prog[1].k, NATIVE_AUDIT_ARCH);
        assert_eq!(prog[2].k, RET_KILL);
    }
}
