//! The seccomp filter of the Linux helper, as a classic BPF program written with `libc` types, and
//! its installation on the calling thread.
//!
//! The program checks the architecture first and kills any syscall made through a foreign ABI
//! (i386 `int 0x80`, x32), so numbers cannot be smuggled past the table. Then, under every
//! confining policy (hardening.md §1):
//! - io_uring (`io_uring_setup/enter/register`) and `clone3` answer `ENOSYS`: io_uring runs
//!   socket, connect and send operations that seccomp never sees, and `clone3` takes its flags
//!   through a pointer the filter cannot read (libc falls back to `clone` on `ENOSYS`);
//! - `EPERM` for the calls that reach other processes or the kernel's global state: `ptrace`,
//!   `process_vm_readv/writev`, `pidfd_getfd`, `process_madvise`, `bpf`, `perf_event_open`,
//!   `userfaultfd`, `fanotify_init`, the keyring calls, the whole mount API old and new (`mount`,
//!   `umount2`, `pivot_root`, `fsopen`, `fsconfig`, `fsmount`, `fspick`, `open_tree`,
//!   `open_tree_attr`, `move_mount`, `mount_setattr`), `setns`, module and kexec loading,
//!   `reboot`, swap, `acct`, setting the clock, `vhangup`, `open_by_handle_at`;
//! - `unshare` and `clone` asking for a new namespace get `EPERM` (no nested user namespace: it
//!   would hand the command a fresh set of capabilities and the kernel surface behind them);
//! - `ioctl` `TIOCSTI`, `TIOCLINUX`, `TIOCCONS` and `TIOCSETD` get `EPERM` (no keystrokes pushed
//!   into a terminal, no console redirection, no line-discipline loading);
//! - no setuid or setgid bit on any file (`chmod` family, and `open`/`openat`/`creat`/`mknod`
//!   creating with such a mode): a root command cannot leave a setuid-root binary behind for
//!   someone to run outside; `openat2` answers `ENOSYS` (its mode is out of the filter's reach).
//!
//! When the network is off, also (sandbox.md §2 step 3): `EPERM` for `connect, accept, accept4,
//! bind, listen, getpeername, getsockname, shutdown, sendmmsg, recvmmsg, getsockopt, setsockopt`;
//! `sendto` only without a destination address (a `send()` on a connected socket pair);
//! `socket`/`socketpair` only for `AF_UNIX`, and never `SOCK_DGRAM` (an unbound datagram socket
//! reaches any host service's datagram socket by path through `sendmsg`, whose address the filter
//! cannot see). Everything else is allowed.
//!
//! This file builds the BPF program from the rules and installs it; `policy.rs` holds the rules:
//! which syscalls are denied, with which answer, and the argument checks.

mod policy;

use std::io;

use libc::{sock_filter, sock_fprog};

use policy::{Check, Test, rules};

/// `AUDIT_ARCH_*` of the architecture this binary runs as (linux/audit.h).
#[cfg(target_arch = "x86_64")]
const NATIVE_AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const NATIVE_AUDIT_ARCH: u32 = 0xC000_00B7;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("the seccomp filter knows x86_64 and aarch64 only");

/// x32 syscalls carry this bit in their number on x86_64 (`__X32_SYSCALL_BIT`).
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// Offsets into `struct seccomp_data`: nr, arch, then args[i] at 16 + 8·i, whose low word comes
/// first on these little-endian targets.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARGS: u32 = 16;
const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const RET_KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;
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

fn load_word(offset: u32) -> sock_filter {
    stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset)
}

fn ret(action: u32) -> sock_filter {
    stmt(libc::BPF_RET | libc::BPF_K, action)
}

const JEQ: u32 = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
const JSET: u32 = libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K;
const AND: u32 = libc::BPF_ALU | libc::BPF_AND | libc::BPF_K;

/// The instructions of one check; each ends by returning its action or falling through.
fn compile_check(check: &Check, out: &mut Vec<sock_filter>) {
    let offset = OFFSET_ARGS + 8 * check.arg + if check.high { 4 } else { 0 };
    out.push(load_word(offset));
    match check.test {
        Test::Eq(v) => out.push(jump(JEQ, v, 0, 1)),
        Test::Ne(v) => out.push(jump(JEQ, v, 1, 0)),
        Test::AnySet(mask) => out.push(jump(JSET, mask, 0, 1)),
        Test::MaskedEq(mask, v) => {
            out.push(stmt(AND, mask));
            out.push(jump(JEQ, v, 0, 1));
        }
    }
    out.push(ret(check.action.ret()));
}

/// The filter program for a command whose network is `network` (allowed or not).
///
/// Layout: the architecture check; the syscall number (and, on x86_64, the x32 check); then one
/// block per rule, entered when the number matches and returning on every path, so the number
/// stays loaded for the next rule's comparison; finally allow. Syscalls without argument rules
/// get the same answer whatever their arguments, which lets the kernel cache the allowed ones.
pub(crate) fn filter(network: bool) -> Vec<sock_filter> {
    let mut prog = vec![
        load_word(OFFSET_ARCH),
        jump(JEQ, NATIVE_AUDIT_ARCH, 1, 0),
        ret(RET_KILL),
        load_word(OFFSET_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        let jge = libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K;
        prog.push(jump(jge, X32_SYSCALL_BIT, 0, 1));
        prog.push(ret(RET_KILL));
    }
    for rule in rules(network) {
        let mut body = Vec::new();
        for check in &rule.checks {
            compile_check(check, &mut body);
        }
        body.push(ret(rule.otherwise.ret()));
        // Rule bodies are a handful of instructions: the skip always fits.
        let skip = u8::try_from(body.len()).unwrap_or(u8::MAX);
        prog.push(jump(JEQ, rule.nr as u32, 0, skip));
        prog.extend(body);
    }
    prog.push(ret(RET_ALLOW));
    prog
}

/// Installs `prog` on the calling thread (inherited across `fork` and `execve`).
/// `PR_SET_NO_NEW_PRIVS` must already be set unless the caller has `CAP_SYS_ADMIN`.
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
    use super::policy::{
        NETWORK_DENIED_SYSCALLS, SYS_FCHMODAT2, SYS_OPEN_TREE_ATTR, SYS_OPENAT2, always_denied,
    };
    use super::*;
    use libc::c_long;

    const RET_EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const RET_ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

    /// Runs the program the way the kernel would for one syscall (only the instructions the
    /// filter uses are understood; anything else fails the test).
    fn run(prog: &[sock_filter], arch: u32, nr: u32, args: &[u64]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, arg) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_le_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        for _ in 0..=prog.len() {
            let ins = prog[pc];
            let code = u32::from(ins.code);
            let jump_if = |taken: bool| 1 + usize::from(if taken { ins.jt } else { ins.jf });
            pc += if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS {
                let k = ins.k as usize;
                acc = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
                1
            } else if code == libc::BPF_RET | libc::BPF_K {
                return ins.k;
            } else if code == JEQ {
                jump_if(acc == ins.k)
            } else if code == JSET {
                jump_if(acc & ins.k != 0)
            } else if code == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K {
                jump_if(acc >= ins.k)
            } else if code == AND {
                acc &= ins.k;
                1
            } else {
                panic!("unexpected instruction {code:#x}");
            };
        }
        panic!("program did not return");
    }

    fn call(network: bool, nr: c_long, args: &[u64]) -> u32 {
        run(&filter(network), NATIVE_AUDIT_ARCH, nr as u32, args)
    }

    #[test]
    fn network_syscalls_get_eperm_only_when_the_network_is_off() {
        for nr in NETWORK_DENIED_SYSCALLS {
            assert_eq!(call(false, nr, &[]), RET_EPERM, "syscall {nr}");
            assert_eq!(call(true, nr, &[]), RET_ALLOW, "syscall {nr}");
        }
    }

    #[test]
    fn sockets_only_for_af_unix_and_never_datagrams() {
        let unix = libc::AF_UNIX as u64;
        let stream = libc::SOCK_STREAM as u64;
        let dgram = libc::SOCK_DGRAM as u64;
        let cloexec = libc::SOCK_CLOEXEC as u64;
        for nr in [libc::SYS_socket, libc::SYS_socketpair] {
            let cases: [(&[u64], u32); 9] = [
                (&[unix, stream], RET_ALLOW),
                (&[unix, stream | cloexec], RET_ALLOW),
                (&[unix, libc::SOCK_SEQPACKET as u64], RET_ALLOW),
                (&[unix, dgram], RET_EPERM),
                (
                    &[unix, dgram | cloexec | libc::SOCK_NONBLOCK as u64],
                    RET_EPERM,
                ),
                (&[libc::AF_INET as u64, stream], RET_EPERM),
                (&[libc::AF_INET6 as u64, dgram], RET_EPERM),
                (&[libc::AF_NETLINK as u64, dgram], RET_EPERM),
                // The kernel reads the family as an int: the high word changes nothing.
                (&[(1 << 32) | libc::AF_INET as u64, stream], RET_EPERM),
            ];
            for (args, expected) in cases {
                assert_eq!(call(false, nr, args), expected, "{nr} {args:?}");
                assert_eq!(call(true, nr, args), RET_ALLOW, "{nr} {args:?}");
            }
            assert_eq!(call(false, nr, &[(1 << 32) | unix, stream]), RET_ALLOW);
        }
    }

    #[test]
    fn sendto_only_without_a_destination() {
        let nr = libc::SYS_sendto;
        assert_eq!(call(false, nr, &[3, 0x1000, 4, 0, 0, 0]), RET_ALLOW);
        assert_eq!(
            call(false, nr, &[3, 0x1000, 4, 0, 0x7ff0_0000, 16]),
            RET_EPERM
        );
        assert_eq!(
            call(false, nr, &[3, 0x1000, 4, 0, 0x7fff << 32, 16]),
            RET_EPERM
        );
        assert_eq!(
            call(true, nr, &[3, 0x1000, 4, 0, 0x7ff0_0000, 16]),
            RET_ALLOW
        );
    }

    #[test]
    fn io_uring_and_clone3_are_missing_whatever_the_network() {
        for network in [false, true] {
            for nr in [
                libc::SYS_io_uring_setup,
                libc::SYS_io_uring_enter,
                libc::SYS_io_uring_register,
                libc::SYS_clone3,
            ] {
                assert_eq!(call(network, nr, &[]), RET_ENOSYS, "syscall {nr}");
            }
        }
    }

    #[test]
    fn process_kernel_and_mount_calls_are_denied_whatever_the_network() {
        for network in [false, true] {
            for (nr, action) in always_denied() {
                assert_eq!(call(network, nr, &[]), action.ret(), "syscall {nr}");
            }
            for nr in [
                libc::SYS_ptrace,
                libc::SYS_bpf,
                libc::SYS_mount_setattr,
                libc::SYS_open_tree,
                libc::SYS_move_mount,
                libc::SYS_keyctl,
                libc::SYS_perf_event_open,
                SYS_OPEN_TREE_ATTR,
            ] {
                assert_eq!(call(network, nr, &[]), RET_EPERM, "syscall {nr}");
            }
        }
    }

    #[test]
    fn namespaces_cannot_be_created() {
        let fork_flags =
            (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD) as u64;
        let thread_flags = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        assert_eq!(call(false, libc::SYS_clone, &[fork_flags]), RET_ALLOW);
        assert_eq!(call(false, libc::SYS_clone, &[thread_flags]), RET_ALLOW);
        for flag in [
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWNS,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWCGROUP,
        ] {
            let flags = fork_flags | flag as u64;
            assert_eq!(
                call(true, libc::SYS_clone, &[flags]),
                RET_EPERM,
                "{flag:#x}"
            );
            assert_eq!(call(true, libc::SYS_unshare, &[flag as u64]), RET_EPERM);
        }
        // CLONE_NEWTIME for unshare; CLONE_FILES/CLONE_FS unsharing stays allowed.
        assert_eq!(call(true, libc::SYS_unshare, &[0x80]), RET_EPERM);
        let harmless = (libc::CLONE_FILES | libc::CLONE_FS) as u64;
        assert_eq!(call(true, libc::SYS_unshare, &[harmless]), RET_ALLOW);
    }

    #[test]
    fn terminal_injection_ioctls_are_denied() {
        for request in [
            libc::TIOCSTI,
            libc::TIOCLINUX,
            libc::TIOCCONS,
            libc::TIOCSETD,
        ] {
            let request = u64::from(request as u32);
            assert_eq!(call(true, libc::SYS_ioctl, &[0, request]), RET_EPERM);
            // The kernel reads the request as an unsigned int.
            assert_eq!(
                call(true, libc::SYS_ioctl, &[0, (1 << 32) | request]),
                RET_EPERM
            );
        }
        for request in [libc::TIOCGWINSZ, libc::TCGETS, libc::FIONREAD] {
            let request = u64::from(request as u32);
            assert_eq!(call(false, libc::SYS_ioctl, &[0, request]), RET_ALLOW);
        }
    }

    #[test]
    fn no_setuid_or_setgid_bits() {
        for network in [false, true] {
            let fchmodat = |mode: u64| call(network, libc::SYS_fchmodat, &[0, 0x1000, mode]);
            assert_eq!(fchmodat(0o755), RET_ALLOW);
            assert_eq!(fchmodat(0o1777), RET_ALLOW);
            assert_eq!(fchmodat(0o4755), RET_EPERM);
            assert_eq!(fchmodat(0o2755), RET_EPERM);
            assert_eq!(call(network, libc::SYS_fchmod, &[3, 0o4755]), RET_EPERM);
            assert_eq!(
                call(network, SYS_FCHMODAT2, &[0, 0x1000, 0o6755, 0]),
                RET_EPERM
            );
            let creat = (libc::O_CREAT | libc::O_WRONLY) as u64;
            let openat =
                |flags: u64, mode: u64| call(network, libc::SYS_openat, &[0, 0x1000, flags, mode]);
            assert_eq!(openat(creat, 0o644), RET_ALLOW);
            assert_eq!(openat(creat, 0o4755), RET_EPERM);
            // Without O_CREAT the mode register holds anything: never looked at.
            assert_eq!(openat(libc::O_RDONLY as u64, 0o4755), RET_ALLOW);
            assert_eq!(openat(libc::O_TMPFILE as u64 | 2, 0o2755), RET_EPERM);
            let node = (libc::S_IFREG | 0o4755) as u64;
            assert_eq!(
                call(network, libc::SYS_mknodat, &[0, 0x1000, node]),
                RET_EPERM
            );
            assert_eq!(call(network, SYS_OPENAT2, &[]), RET_ENOSYS);
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
            libc::SYS_setsid,
            libc::SYS_landlock_restrict_self,
        ] {
            assert_eq!(call(false, nr, &[]), RET_ALLOW, "syscall {nr}");
        }
    }

    #[test]
    fn foreign_abis_are_killed() {
        const AUDIT_ARCH_I386: u32 = 0x4000_0003;
        const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
        let prog = filter(true);
        // getpid through int 0x80 is number 20 on i386.
        assert_eq!(run(&prog, AUDIT_ARCH_I386, 20, &[]), RET_KILL);
        assert_eq!(run(&prog, AUDIT_ARCH_ARM, 20, &[]), RET_KILL);
        #[cfg(target_arch = "x86_64")]
        {
            let x32_connect = X32_SYSCALL_BIT | libc::SYS_connect as u32;
            assert_eq!(run(&prog, NATIVE_AUDIT_ARCH, x32_connect, &[]), RET_KILL);
            assert_eq!(
                run(&prog, NATIVE_AUDIT_ARCH, X32_SYSCALL_BIT | 39, &[]),
                RET_KILL
            );
        }
    }

    #[test]
    fn program_starts_with_the_architecture_check_and_fits_the_kernel_limit() {
        for network in [false, true] {
            let prog = filter(network);
            assert_eq!(prog[0].k, OFFSET_ARCH);
            assert_eq!(prog[1].k, NATIVE_AUDIT_ARCH);
            assert_eq!(prog[2].k, RET_KILL);
            // BPF_MAXINSNS
            assert!(prog.len() < 4096, "{}", prog.len());
        }
    }
}
