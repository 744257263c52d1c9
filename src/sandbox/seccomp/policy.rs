//! The seccomp policy tables: the syscalls denied under every confining policy and those denied
//! when the network is off, each with its answer (`EPERM`, `ENOSYS`), and the argument checks
//! (namespace flags, terminal ioctls, setuid/setgid modes, socket families and types). The
//! program is built from them in `mod.rs`.

use libc::c_long;

use super::RET_ALLOW;

/// `open_tree_attr` (Linux 6.15), the same number on every architecture; not in `libc` yet.
pub(super) const SYS_OPEN_TREE_ATTR: c_long = 467;
/// `openat2` and `fchmodat2` (Linux 5.6 and 6.6), the same on every architecture.
pub(super) const SYS_OPENAT2: c_long = 437;
pub(super) const SYS_FCHMODAT2: c_long = 452;
/// Namespace flags refused to `unshare` (`CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER |
/// NEWPID | NEWNET | NEWTIME`).
const UNSHARE_NAMESPACE_FLAGS: u32 = 0x7E02_0080;
/// The same for `clone`, without `CLONE_NEWTIME` (0x80), which `clone` cannot take: that bit
/// belongs to the exit signal there.
const CLONE_NAMESPACE_FLAGS: u32 = 0x7E02_0000;
/// The socket type bits of `socket`'s second argument (`SOCK_TYPE_MASK`), below the flags.
const SOCK_TYPE_MASK: u32 = 0xF;
/// What the filter answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Allow,
    Errno(i32),
}

impl Action {
    pub(super) fn ret(self) -> u32 {
        match self {
            Action::Allow => RET_ALLOW,
            // errno values are small positive numbers: they fit the 16-bit data field.
            Action::Errno(e) => libc::SECCOMP_RET_ERRNO | (e as u32 & libc::SECCOMP_RET_DATA),
        }
    }
}

const EPERM: Action = Action::Errno(libc::EPERM);
const ENOSYS: Action = Action::Errno(libc::ENOSYS);

/// A test on one 32-bit half of one argument.
#[derive(Debug, Clone, Copy)]
pub(super) enum Test {
    /// The word equals the value.
    Eq(u32),
    /// The word differs from the value.
    Ne(u32),
    /// The word has any of these bits.
    AnySet(u32),
    /// The word, masked, equals the value.
    MaskedEq(u32, u32),
}

/// "If argument `arg` (its high word when `high`) passes `test`, answer `action`."
#[derive(Debug, Clone, Copy)]
pub(super) struct Check {
    pub(super) arg: u32,
    pub(super) high: bool,
    pub(super) test: Test,
    pub(super) action: Action,
}

/// One syscall's checks, in order, and the answer when none applies.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub(super) nr: c_long,
    pub(super) checks: Vec<Check>,
    pub(super) otherwise: Action,
}

fn deny(nr: c_long, action: Action) -> Rule {
    Rule {
        nr,
        checks: Vec::new(),
        otherwise: action,
    }
}

fn low(arg: u32, test: Test, action: Action) -> Check {
    Check {
        arg,
        high: false,
        test,
        action,
    }
}

/// Syscalls denied whatever the network setting, with their answer.
pub(super) fn always_denied() -> Vec<(c_long, Action)> {
    let mut denied = vec![
        (libc::SYS_io_uring_setup, ENOSYS),
        (libc::SYS_io_uring_enter, ENOSYS),
        (libc::SYS_io_uring_register, ENOSYS),
        (libc::SYS_clone3, ENOSYS),
    ];
    let eperm = [
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_pidfd_getfd,
        libc::SYS_process_madvise,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_fanotify_init,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_open_tree,
        SYS_OPEN_TREE_ATTR,
        libc::SYS_move_mount,
        libc::SYS_mount_setattr,
        libc::SYS_setns,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_acct,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_vhangup,
        libc::SYS_open_by_handle_at,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_iopl,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_ioperm,
    ];
    denied.extend(eperm.into_iter().map(|nr| (nr, EPERM)));
    denied
}

/// The syscalls answered with `EPERM` when the network is off (sandbox.md §2; `sendto`,
/// `socket` and `socketpair` have argument rules instead).
pub(crate) const NETWORK_DENIED_SYSCALLS: [c_long; 12] = [
    libc::SYS_connect,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_getpeername,
    libc::SYS_getsockname,
    libc::SYS_shutdown,
    libc::SYS_sendmmsg,
    libc::SYS_recvmmsg,
    libc::SYS_getsockopt,
    libc::SYS_setsockopt,
];

/// Every rule of the filter for a command whose network is `network` (allowed or not).
pub(super) fn rules(network: bool) -> Vec<Rule> {
    let mut rules: Vec<Rule> = always_denied()
        .into_iter()
        .map(|(nr, action)| deny(nr, action))
        .collect();
    rules.push(Rule {
        nr: libc::SYS_unshare,
        checks: vec![low(0, Test::AnySet(UNSHARE_NAMESPACE_FLAGS), EPERM)],
        otherwise: Action::Allow,
    });
    rules.push(Rule {
        nr: libc::SYS_clone,
        checks: vec![low(0, Test::AnySet(CLONE_NAMESPACE_FLAGS), EPERM)],
        otherwise: Action::Allow,
    });
    // The request is an `unsigned int` for the kernel: only the low word counts.
    let ioctls = [
        libc::TIOCSTI,
        libc::TIOCLINUX,
        libc::TIOCCONS,
        libc::TIOCSETD,
    ];
    rules.push(Rule {
        nr: libc::SYS_ioctl,
        checks: ioctls
            .iter()
            .map(|request| low(1, Test::Eq(*request as u32), EPERM))
            .collect(),
        otherwise: Action::Allow,
    });
    rules.extend(setuid_rules());
    if network {
        return rules;
    }
    rules.extend(NETWORK_DENIED_SYSCALLS.iter().map(|nr| deny(*nr, EPERM)));
    rules.push(Rule {
        nr: libc::SYS_sendto,
        checks: vec![
            low(4, Test::Ne(0), EPERM),
            Check {
                arg: 4,
                high: true,
                test: Test::Ne(0),
                action: EPERM,
            },
        ],
        otherwise: Action::Allow,
    });
    for nr in [libc::SYS_socket, libc::SYS_socketpair] {
        rules.push(Rule {
            nr,
            checks: vec![
                // The family is an `int`: the low word only, whatever the high word holds.
                low(0, Test::Ne(libc::AF_UNIX as u32), EPERM),
                low(
                    1,
                    Test::MaskedEq(SOCK_TYPE_MASK, libc::SOCK_DGRAM as u32),
                    EPERM,
                ),
            ],
            otherwise: Action::Allow,
        });
    }
    rules
}

/// No setuid or setgid file: a root command would leave a setuid-root binary in the workspace
/// for anyone on the host to run later. `EPERM` for the mode-changing and file-creating calls
/// whose mode has `S_ISUID` or `S_ISGID` (for `open`/`openat`, only when they create).
fn setuid_rules() -> Vec<Rule> {
    const SETID_BITS: u32 = 0o6000;
    /// `O_CREAT | __O_TMPFILE`, the same on x86_64 and aarch64.
    const CREATING: u32 = 0o100 | 0o2000_0000;
    let mode_at = |nr: c_long, arg: u32| Rule {
        nr,
        checks: vec![low(arg, Test::AnySet(SETID_BITS), EPERM)],
        otherwise: Action::Allow,
    };
    let creating = |nr: c_long, flags: u32, mode: u32| Rule {
        nr,
        checks: vec![
            low(flags, Test::MaskedEq(CREATING, 0), Action::Allow),
            low(mode, Test::AnySet(SETID_BITS), EPERM),
        ],
        otherwise: Action::Allow,
    };
    let mut rules = vec![
        mode_at(libc::SYS_fchmod, 1),
        mode_at(libc::SYS_fchmodat, 2),
        mode_at(SYS_FCHMODAT2, 2),
        mode_at(libc::SYS_mknodat, 2),
        creating(libc::SYS_openat, 2, 3),
    ];
    #[cfg(target_arch = "x86_64")]
    rules.extend([
        mode_at(libc::SYS_chmod, 1),
        mode_at(libc::SYS_creat, 1),
        mode_at(libc::SYS_mknod, 1),
        creating(libc::SYS_open, 1, 2),
    ]);
    // openat2 takes its mode in a struct the filter cannot read; libc falls back to openat.
    rules.push(deny(SYS_OPENAT2, ENOSYS));
    rules
}
