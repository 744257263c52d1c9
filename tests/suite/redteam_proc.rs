//! The red team's process classes (hardening.md §1): acting on host processes, using root's
//! powers, outliving the command (or a killed server), and pushing keystrokes into a terminal.
//! Judged outside: the host process still runs with its priority, affinity and limits; its
//! environment did not leak; the host's hostname, cgroups and core pattern are as they were; no
//! setuid file was planted; the daemon stopped writing; nothing arrived in the terminal's input.
#![cfg(target_os = "linux")]

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::redteam::{Arena, Who, collect, policies, probe_bin, require_probe, skip, users};
use crate::support::os::processes_naming;

fn s(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

/// A host process of the attacker's own user, with a secret in its environment.
struct Victim {
    child: Child,
    secret: String,
}

impl Victim {
    fn start(who: Who) -> Victim {
        let secret = format!("codex-lite-redteam-secret-{}", std::process::id());
        let mut cmd = Command::new("sleep");
        cmd.arg("300")
            .env("REDTEAM_SECRET", &secret)
            .stdin(Stdio::null());
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } == 0 {
            cmd.uid(who.uid).gid(who.gid);
        }
        Victim {
            child: cmd.spawn().unwrap(),
            secret,
        }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// What an attack could change about it: alive, nice, CPU limit, allowed CPUs, I/O priority.
    fn observe(&mut self) -> (bool, String, String, String, i64) {
        let pid = self.child.id();
        let alive = self.child.try_wait().unwrap().is_none();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let nice = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(16))
            .unwrap_or_default()
            .to_string();
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
        let cpu = limits
            .lines()
            .find(|l| l.starts_with("Max cpu time"))
            .unwrap_or_default()
            .to_string();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let cpus = status
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list"))
            .unwrap_or_default()
            .to_string();
        // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, pid) only reads.
        let ioprio = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, pid) };
        (alive, nice, cpu, cpus, ioprio)
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn host_processes_cannot_be_signalled_limited_traced_or_read() {
    require_probe!();
    for who in users() {
        let arena = Arena::new("procs", who, |_| {});
        // The controls: unconfined, the attacker reads the secret and renices the process.
        let mut control = Victim::start(who);
        let read = arena.run_unconfined(&["environ", &control.pid()]);
        assert!(read.stdout.contains(&control.secret), "{read:?}");
        let before = control.observe();
        assert!(arena.run_unconfined(&["renice", &control.pid()]).is_ok());
        assert_ne!(
            control.observe().1,
            before.1,
            "{} control renice",
            who.label
        );
        assert!(arena.run_unconfined(&["kill", &control.pid()]).is_ok());
        std::thread::sleep(Duration::from_millis(100));
        assert!(!control.observe().0, "{} control kill", who.label);

        let mut victim = Victim::start(who);
        let before = victim.observe();
        for (label, policy) in policies() {
            for action in [
                "kill",
                "pidfd-kill",
                "prlimit-cpu",
                "renice",
                "affinity",
                "ioprio",
                "ptrace",
                "environ",
                "vm-read",
                "sigio",
            ] {
                let run = arena.run(&policy, &[action, &victim.pid()]);
                std::thread::sleep(Duration::from_millis(20));
                assert_eq!(
                    victim.observe(),
                    before,
                    "{} {label}: {action} reached the host process: {run:?}",
                    who.label
                );
                assert!(!run.stdout.contains(&victim.secret), "{run:?}");
                assert!(!run.is_ok(), "{} {label} {action}: {run:?}", who.label);
            }
        }
    }
}

/// The host's core pattern, hostname and a cgroup path, restored if an attack changed them.
struct HostState {
    core_pattern: String,
    hostname: String,
}

impl HostState {
    fn read() -> HostState {
        HostState {
            core_pattern: std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        }
    }
}

impl Drop for HostState {
    fn drop(&mut self) {
        for (path, value) in [
            ("/proc/sys/kernel/core_pattern", &self.core_pattern),
            ("/proc/sys/kernel/hostname", &self.hostname),
        ] {
            if std::fs::read_to_string(path).ok().as_ref() != Some(value) {
                let _ = std::fs::write(path, value);
            }
        }
    }
}

#[test]
fn root_powers_are_gone() {
    require_probe!();
    let cgroup_parent = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]
        .into_iter()
        .find(|p| Path::new(p).is_dir());
    for who in users() {
        let arena = Arena::new("powers", who, |base| {
            std::fs::write(base.join("ws/suid"), "#!/bin/sh\n").unwrap();
            std::fs::write(base.join("ws/capfile"), "#!/bin/sh\n").unwrap();
        });
        let host = HostState::read();
        let cgroup = cgroup_parent.map(|p| {
            PathBuf::from(p).join(format!(
                "codex-lite-redteam-{}-{}",
                std::process::id(),
                who.label
            ))
        });
        if who.uid == 0 {
            // The control: root outside has the capability (a bad reboot magic is EINVAL only
            // after the capability check passed) and may plant a setuid file.
            for action in ["reboot", "clock"] {
                let run = arena.run_unconfined(&[action]);
                assert_eq!(run.result, format!("errno={}", libc::EINVAL), "{run:?}");
            }
            // File capabilities: root outside may give a file in the workspace the power that
            // the user's next run of it would carry.
            let control = arena.ws.join("control-cap");
            std::fs::write(&control, "").unwrap();
            let run = arena.run_unconfined(&["setcap", &s(&control)]);
            if run.is_ok() {
                assert!(file_capability(&control).is_some());
            } else {
                skip(&format!(
                    "this file system takes no file capabilities ({run:?}): the setcap control \
                     is not tried"
                ));
            }
            let control = arena.ws.join("control-suid");
            std::fs::write(&control, "").unwrap();
            assert!(
                arena
                    .run_unconfined(&["setuid-chmod", &s(&control)])
                    .is_ok()
            );
            assert_ne!(std::fs::metadata(&control).unwrap().mode() & 0o4000, 0);
        }
        let ws = |name: &str| s(&arena.ws.join(name));
        for (label, policy) in policies() {
            for action in [
                "bpf",
                "perf",
                "keyctl",
                "reboot",
                "clock",
                "swapon",
                "init-module",
                "fanotify",
                "userns",
            ] {
                let run = arena.run(&policy, &[action]);
                let refused = [libc::EPERM, libc::ENOSYS].map(|e| format!("errno={e}"));
                assert!(
                    refused.contains(&run.result),
                    "{} {label}: {action}: {run:?}",
                    who.label
                );
            }
            let attacks: Vec<Vec<String>> = [
                vec!["sethostname".to_string(), "redteam".to_string()],
                vec!["mknod-blk".to_string(), ws("blk")],
                vec!["setuid-chmod".to_string(), ws("suid")],
                vec!["setuid-create".to_string(), ws("suid2")],
                vec!["setcap".to_string(), ws("capfile")],
                vec!["chattr".to_string(), ws("capfile")],
                vec![
                    "core-pattern".to_string(),
                    "|/tmp/redteam-core %p".to_string(),
                ],
            ]
            .into_iter()
            .chain(
                cgroup
                    .iter()
                    .map(|c| vec!["cgroup-mkdir".to_string(), s(c)]),
            )
            .collect();
            for attack in &attacks {
                let args: Vec<&str> = attack.iter().map(String::as_str).collect();
                let run = arena.run(&policy, &args);
                let now = HostState::read();
                assert_eq!(now.hostname, host.hostname, "{args:?}: {run:?}");
                assert_eq!(now.core_pattern, host.core_pattern, "{args:?}: {run:?}");
                std::mem::forget(now);
                let blk = std::fs::symlink_metadata(arena.ws.join("blk"));
                assert!(
                    blk.is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound),
                    "{args:?}: {run:?}"
                );
                for name in ["suid", "suid2"] {
                    let mode = std::fs::metadata(arena.ws.join(name)).map_or(0, |m| m.mode());
                    assert_eq!(mode & 0o6000, 0, "{} {label} {args:?}: {run:?}", who.label);
                }
                let capfile = arena.ws.join("capfile");
                assert_eq!(
                    file_capability(&capfile),
                    None,
                    "{} {label} {args:?}: {run:?}",
                    who.label
                );
                assert_eq!(
                    inode_flags(&capfile) & FS_APPEND_FL,
                    0,
                    "{} {label} {args:?}: {run:?}",
                    who.label
                );
                if let Some(c) = &cgroup {
                    assert!(!c.exists(), "{args:?}: {run:?}");
                }
            }
            let caps = arena.run(&policy, &["caps"]);
            for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
                assert!(
                    caps.result.contains(&format!("{set}:\t0000000000000000")),
                    "{} {label}: {caps:?}",
                    who.label
                );
            }
        }
        if let Some(c) = &cgroup {
            let _ = std::fs::remove_dir(c);
        }
    }
}

/// The `security.capability` attribute of `path`, if it has one.
fn file_capability(path: &Path) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut value = vec![0u8; 64];
    // SAFETY: NUL-terminated strings; `value` is writable for its length.
    let n = unsafe {
        libc::getxattr(
            c.as_ptr(),
            c"security.capability".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    let n = usize::try_from(n).ok()?;
    value.truncate(n);
    Some(value)
}

/// `FS_APPEND_FL` of `FS_IOC_GETFLAGS` (`chattr +a`: needs `CAP_LINUX_IMMUTABLE`).
const FS_APPEND_FL: i32 = 0x20;

/// The inode flags of `path` (`lsattr`), 0 where the file system has none.
fn inode_flags(path: &Path) -> i32 {
    let Ok(file) = std::fs::File::open(path) else {
        return 0;
    };
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), 0x8008_6601, &mut flags) };
    if rc == 0 { flags } else { 0 }
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Waits until `path` has grown (a daemon is writing to it).
fn wait_growing(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    let first = size(path);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(60));
        if size(path) > first {
            return true;
        }
    }
    false
}

/// Whether anything still writes `path` or names it, half a second from now.
fn still_alive(path: &Path) -> bool {
    std::thread::sleep(Duration::from_millis(300));
    let first = size(path);
    std::thread::sleep(Duration::from_millis(500));
    size(path) != first || !processes_naming(&s(path)).is_empty()
}

fn kill_all_naming(path: &Path) {
    for pid in processes_naming(&s(path)) {
        // SAFETY: SIGKILL to a process of this test.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
}

#[test]
fn a_daemon_dies_with_its_command_and_everything_dies_with_a_killed_server() {
    require_probe!();
    for who in users() {
        let arena = Arena::new("daemon", who, |_| {});
        // The control: unconfined, a setsid double-fork daemon outlives its parent.
        let beat = arena.ws.join("control-beat");
        assert!(arena.run_unconfined(&["daemon", &s(&beat)]).is_ok());
        assert!(wait_growing(&beat), "{} control daemon", who.label);
        assert!(still_alive(&beat));
        kill_all_naming(&beat);
        for (label, policy) in policies() {
            // read-only has no writable root: the daemon writes to /dev/null and is looked
            // for by its command line.
            let beat = if label == "read-only" {
                PathBuf::from("/dev/null")
            } else {
                arena.ws.join(format!("beat-{label}"))
            };
            let marker = arena.ws.join(format!("marker-{label}"));
            // The marker is only an argument, so the daemon can be found by its command line.
            let run = arena.run(&policy, &["daemon", &s(&beat), &s(&marker)]);
            assert!(run.is_ok(), "{} {label}: {run:?}", who.label);
            std::thread::sleep(Duration::from_millis(100));
            assert!(
                processes_naming(&s(&marker)).is_empty(),
                "{} {label}: the daemon outlived its command",
                who.label
            );
            if label != "read-only" {
                assert!(!still_alive(&beat), "{} {label}: still beating", who.label);
            }
        }
        // A server killed while its command runs: the helper sees its parent go and takes the
        // whole command down, daemons included.
        let bin = arena.dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let helper = bin.join("codex-linux-sandbox");
        let _ = std::fs::remove_file(&helper);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_codex-lite"), &helper).unwrap();
        let (_, policy) = policies().into_iter().nth(1).unwrap();
        let beat = arena.ws.join("orphan-beat");
        let script = format!(
            "{} daemon {}; exec sleep 60",
            probe_bin().display(),
            beat.display()
        );
        let mut server = Command::new("sh");
        server
            .arg("-c")
            .arg("\"$0\" \"$@\"; :")
            .arg(&helper)
            .arg("--sandbox-policy-cwd")
            .arg(&arena.ws)
            .arg("--sandbox-policy")
            .arg(policy.to_string())
            .args(["--", "sh", "-c", &script])
            .current_dir(&arena.ws)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } == 0 {
            server.uid(who.uid).gid(who.gid);
        }
        let mut server = server.spawn().unwrap();
        assert!(
            wait_growing(&beat),
            "{}: the daemon never started",
            who.label
        );
        server.kill().unwrap();
        server.wait().unwrap();
        let gone = !still_alive(&beat);
        kill_all_naming(&beat);
        assert!(
            gone,
            "{}: the command outlived the killed server",
            who.label
        );
    }
}

/// A pseudo-terminal: the test keeps the master and one slave end; the other slave end becomes
/// the probe's stdin (and controlling terminal).
struct Pty {
    _master: OwnedFd,
    slave: OwnedFd,
}

impl Pty {
    fn open(who: Who) -> Pty {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty fills two fds; the name and settings pointers may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0);
        // SAFETY: fresh fds from openpty.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        // Raw and non-blocking, so one injected byte is readable at once.
        // SAFETY: termios calls on our own fd with a valid struct.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            libc::tcgetattr(slave.as_raw_fd(), &mut t);
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t);
            libc::fcntl(slave.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
            libc::fchown(slave.as_raw_fd(), who.uid, who.gid);
        }
        Pty {
            _master: master,
            slave,
        }
    }

    /// Gives `cmd` the terminal as stdin and controlling terminal, in a new session.
    fn attach(&self, cmd: &mut Command) {
        let fd = self.slave.try_clone().unwrap();
        cmd.stdin(Stdio::from(fd));
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// Whatever arrived in the terminal's input since the last call.
    fn injected(&self) -> Vec<u8> {
        let mut file = std::fs::File::from(self.slave.try_clone().unwrap());
        let mut buf = vec![0u8; 64];
        let n = file.read(&mut buf).unwrap_or(0);
        buf.truncate(n);
        buf
    }
}

#[test]
fn no_keystrokes_reach_the_terminal() {
    require_probe!();
    for who in users() {
        let arena = Arena::new("tty", who, |_| {});
        let pty = Pty::open(who);
        let mut control = Command::new(probe_bin());
        control.arg("tiocsti").current_dir(&arena.ws);
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } == 0 {
            control.uid(who.uid).gid(who.gid);
        }
        pty.attach(&mut control);
        let run = collect(control);
        if run.is_ok() {
            assert_eq!(pty.injected(), b"X", "{} control: {run:?}", who.label);
        } else {
            skip(&format!(
                "{}: this kernel refuses TIOCSTI even unconfined ({run:?}); only the sandbox's \
                 own refusal is checked",
                who.label
            ));
        }
        for (label, policy) in policies() {
            for action in ["tiocsti", "tioclinux"] {
                let mut cmd = arena.sandboxed(&policy, &[action]);
                pty.attach(&mut cmd);
                let run = collect(cmd);
                assert_eq!(
                    pty.injected(),
                    b"",
                    "{} {label} {action}: {run:?}",
                    who.label
                );
                assert_eq!(run.result, format!("errno={}", libc::EPERM), "{run:?}");
            }
        }
        // The `sandbox` CLI, which passes the user's terminal through.
        let mut cli = Command::new(env!("CARGO_BIN_EXE_codex-lite"));
        cli.args(["sandbox", "linux", "--full-auto", "--"])
            .arg(probe_bin())
            .arg("tiocsti")
            .current_dir(&arena.ws)
            .env("CODEX_HOME", &arena.home);
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } == 0 {
            cli.uid(who.uid).gid(who.gid);
        }
        pty.attach(&mut cli);
        let run = collect(cli);
        assert_eq!(pty.injected(), b"", "{} sandbox CLI: {run:?}", who.label);
        assert_eq!(run.result, format!("errno={}", libc::EPERM), "{run:?}");
    }
}

/// A System V shared memory segment of a "host process" (the test), open to everyone; removed
/// on drop.
struct SysvSegment {
    id: libc::c_int,
    mem: *mut u8,
}

impl SysvSegment {
    fn create(key: libc::key_t) -> SysvSegment {
        // SAFETY: plain System V calls; the segment is ours and sized for what we touch.
        unsafe {
            let id = libc::shmget(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o666);
            assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
            let mem = libc::shmat(id, std::ptr::null(), 0);
            assert_ne!(
                mem as isize,
                -1,
                "shmat: {}",
                std::io::Error::last_os_error()
            );
            let segment = SysvSegment {
                id,
                mem: mem.cast(),
            };
            segment.reset();
            segment
        }
    }

    fn reset(&self) {
        // SAFETY: the mapping is 4096 bytes long.
        unsafe { std::ptr::copy_nonoverlapping(b"original".as_ptr(), self.mem, 8) };
    }

    fn content(&self) -> Vec<u8> {
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts(self.mem, 8).to_vec() }
    }
}

impl Drop for SysvSegment {
    fn drop(&mut self) {
        // SAFETY: detaching our own mapping and removing our own segment.
        unsafe {
            libc::shmdt(self.mem.cast());
            libc::shmctl(self.id, libc::IPC_RMID, std::ptr::null_mut());
        }
    }
}

/// A POSIX shared memory object (a file in the host's `/dev/shm`), removed on drop.
struct ShmFile(PathBuf);

impl Drop for ShmFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn host_shared_memory_is_out_of_reach() {
    require_probe!();
    for (n, who) in users().into_iter().enumerate() {
        let arena = Arena::new("shm", who, |_| {});
        let pid = std::process::id();
        let posix = ShmFile(PathBuf::from(format!(
            "/dev/shm/codex-lite-redteam-{pid}-{}",
            who.label
        )));
        std::fs::write(&posix.0, "original").unwrap();
        super::redteam::open_to_all(&posix.0);
        let key = 0x5EC0_0000 | ((pid as libc::key_t & 0xFFFF) << 4) | n as libc::key_t;
        let segment = SysvSegment::create(key);
        let key = key.to_string();
        let posix_path = s(&posix.0);
        // The controls: unconfined, the attacker writes both.
        assert!(arena.run_unconfined(&["write", &posix_path]).is_ok());
        assert_ne!(std::fs::read(&posix.0).unwrap(), b"original");
        std::fs::write(&posix.0, "original").unwrap();
        let run = arena.run_unconfined(&["sysv-shm", &key]);
        assert!(run.is_ok(), "{} control: {run:?}", who.label);
        assert_eq!(segment.content(), b"escaped\0");
        segment.reset();
        for (label, policy) in policies() {
            let run = arena.run(&policy, &["write", &posix_path]);
            assert_eq!(
                std::fs::read(&posix.0).unwrap(),
                b"original",
                "{} {label}: /dev/shm: {run:?}",
                who.label
            );
            let run = arena.run(&policy, &["sysv-shm", &key]);
            assert_eq!(
                segment.content(),
                b"original",
                "{} {label}: System V: {run:?}",
                who.label
            );
        }
    }
}
