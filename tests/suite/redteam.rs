//! The red team (hardening.md §1, §3): hostile probes run through the real helper, as root and as
//! an unprivileged user (nobody, dropped to with `Command::uid`), judged by what changed outside
//! the sandbox: a host service's socket that was (not) reached, a datagram that did (not) arrive,
//! metadata that did (not) change, a host process that was (not) signalled, a daemon that is
//! (not) still running. Each attack also runs unconfined first, where it must succeed, so a test
//! that passes proves the sandbox stopped it rather than the probe being broken; when the host
//! itself forbids an attack (io_uring disabled, say) that part is skipped visibly.
//!
//! The probe is `tests/redteam/probe.c`, compiled with gcc at test time (no gcc: every test
//! fails, saying so). This file holds the harness and the network class; the filesystem
//! and carve-out classes are in `redteam_fs.rs`, processes, root powers, daemons and terminals in
//! `redteam_proc.rs`.
#![cfg(target_os = "linux")]

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::TempDir;
use crate::support::os::inherit_fd;

const BIN: &str = env!("CARGO_BIN_EXE_codex-lite");

/// Says why (part of) a test did not run, bypassing libtest's capture so it is always seen.
pub(crate) fn skip(why: &str) {
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// The compiled probe, built once per test run. gcc is a prerequisite of the tests (README, "Tests
/// and CI"): without it every red-team test fails, saying so, rather than passing untried.
pub(crate) fn probe_bin() -> &'static Path {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("redteam-probe");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/redteam/probe.c");
        let out = dir.join(format!("probe-{}", std::process::id()));
        match Command::new("gcc")
            .args(["-O1", "-Wall", "-o"])
            .arg(&out)
            .arg(&source)
            .output()
        {
            Ok(o) if o.status.success() => Ok(out),
            Ok(o) => Err(format!(
                "gcc cannot build tests/redteam/probe.c ({}):\n{}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => Err(format!(
                "the red-team tests need gcc to build tests/redteam/probe.c (Debian: apt-get \
                 install gcc libc6-dev): {e}"
            )),
        }
    });
    match built {
        Ok(path) => path,
        Err(why) => panic!("{why}"),
    }
}

/// The probe, for a red-team test (fails the test when it cannot be built).
macro_rules! require_probe {
    () => {
        $crate::suite::redteam::probe_bin()
    };
}
#[allow(unused_imports)] // used by the other red-team files
pub(crate) use require_probe;

/// Who runs the attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Who {
    pub uid: u32,
    pub gid: u32,
    pub label: &'static str,
}

/// Root and nobody when the tests run as root; otherwise only ourselves (the root half is
/// skipped visibly).
pub(crate) fn users() -> Vec<Who> {
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if uid == 0 {
        vec![
            Who {
                uid: 0,
                gid: 0,
                label: "root",
            },
            Who {
                uid: 65534,
                gid: 65534,
                label: "nobody",
            },
        ]
    } else {
        skip("not root: the red team runs as this user only, not also as root");
        vec![Who {
            uid,
            gid,
            label: "user",
        }]
    }
}

/// The two confining policies, both with the network off.
pub(crate) fn policies() -> [(&'static str, Value); 2] {
    [
        ("read-only", json!({"type": "read-only"})),
        (
            "workspace-write",
            json!({"type": "workspace-write", "writable_roots": [], "network_access": false,
                   "exclude_tmpdir_env_var": true, "exclude_slash_tmp": false}),
        ),
    ]
}

/// What one probe run printed and how it ended.
#[derive(Debug)]
pub(crate) struct Probe {
    /// After `probe: ` (empty when it never printed).
    pub result: String,
    #[allow(dead_code)] // shown through Debug
    pub code: Option<i32>,
    #[allow(dead_code)]
    pub signal: Option<i32>,
    pub stdout: String,
    #[allow(dead_code)]
    pub stderr: String,
}

impl Probe {
    /// Whether the attack's syscalls all succeeded.
    pub fn is_ok(&self) -> bool {
        self.result == "ok"
    }
}

/// A scratch tree owned by the attacker: `ws` (the command's cwd, its writable root under
/// workspace-write), `outside` (neither), `home` (its CODEX_HOME, inside `ws`, so only the
/// CODEX_HOME rule protects it), `bin` (a `codex-linux-sandbox` link to the helper).
pub(crate) struct Arena {
    pub dir: TempDir,
    pub who: Who,
    pub ws: PathBuf,
    pub outside: PathBuf,
    pub home: PathBuf,
}

impl Arena {
    /// A fresh arena for `who`; `setup` fills it (as root, before ownership is handed over).
    pub fn new(name: &str, who: Who, setup: impl FnOnce(&Path)) -> Arena {
        let dir = TempDir::new_outside_tmp(&format!("redteam-{name}-{}", who.label));
        let ws = dir.path().join("ws");
        let outside = dir.path().join("outside");
        let home = ws.join("codex-home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(
            home.join("auth.json"),
            "{\"OPENAI_API_KEY\":\"sk-original\"}",
        )
        .unwrap();
        std::fs::write(outside.join("victim"), "original\n").unwrap();
        setup(dir.path());
        let arena = Arena {
            dir,
            who,
            ws,
            outside,
            home,
        };
        arena.give_to_attacker();
        arena
    }

    /// Hands the whole tree to the attacker (it may do anything the owner may).
    pub fn give_to_attacker(&self) {
        let status = Command::new("chown")
            .args(["-hR", &format!("{}:{}", self.who.uid, self.who.gid)])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.ws)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.dir.path())
            .env("CODEX_HOME", &self.home)
            .stdin(Stdio::null());
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } == 0 {
            // std clears the supplementary groups when root drops to another uid.
            cmd.uid(self.who.uid).gid(self.who.gid);
        }
        cmd
    }

    /// The helper running the probe with `args` under `policy`, in `ws`, as the attacker.
    pub fn sandboxed(&self, policy: &Value, args: &[&str]) -> Command {
        self.sandboxed_in(&self.ws, policy, args)
    }

    /// [`Arena::sandboxed`] with `cwd` as the working directory and the policy's cwd.
    pub fn sandboxed_in(&self, cwd: &Path, policy: &Value, args: &[&str]) -> Command {
        let probe = probe_bin();
        let mut cmd = self.command(Path::new(BIN));
        cmd.current_dir(cwd)
            .arg0("codex-linux-sandbox")
            .arg("--sandbox-policy-cwd")
            .arg(cwd)
            .arg("--sandbox-policy")
            .arg(policy.to_string())
            .arg("--codex-home")
            .arg(&self.home)
            .arg("--")
            .arg(probe)
            .args(args);
        cmd
    }

    /// Runs the probe sandboxed (see [`Arena::sandboxed`]).
    pub fn run(&self, policy: &Value, args: &[&str]) -> Probe {
        collect(self.sandboxed(policy, args))
    }

    /// Runs the probe unconfined as the attacker: the control that shows the attack works.
    pub fn run_unconfined(&self, args: &[&str]) -> Probe {
        let mut cmd = self.command(probe_bin());
        cmd.args(args);
        collect(cmd)
    }
}

pub(crate) fn collect(mut cmd: Command) -> Probe {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Probe {
        result: stdout
            .lines()
            .find_map(|l| l.strip_prefix("probe: "))
            .unwrap_or_default()
            .to_string(),
        code: out.status.code(),
        signal: out.status.signal(),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Makes `path` usable by everyone (a socket nobody must be able to reach when unconfined).
pub(crate) fn open_to_all(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).unwrap();
}

// ---- the network class ----

use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixListener};

/// Host services a sandboxed command must not reach: a stream and a datagram unix socket (a
/// docker/dbus/journald stand-in), an abstract unix socket, TCP and UDP on 127.0.0.1 and ::1.
struct Services {
    stream: UnixListener,
    stream_path: PathBuf,
    dgram: UnixDatagram,
    dgram_path: PathBuf,
    abstract_listener: UnixListener,
    abstract_name: String,
    udp: UdpSocket,
    udp6: Option<UdpSocket>,
    tcp: TcpListener,
    tcp6: Option<TcpListener>,
}

impl Services {
    fn start(arena: &Arena) -> Services {
        use std::os::linux::net::SocketAddrExt;
        let stream_path = arena.outside.join("service.sock");
        let stream = UnixListener::bind(&stream_path).unwrap();
        open_to_all(&stream_path);
        let dgram_path = arena.outside.join("journal.sock");
        let dgram = UnixDatagram::bind(&dgram_path).unwrap();
        open_to_all(&dgram_path);
        let abstract_name = format!(
            "codex-lite-{}",
            arena.dir.path().file_name().unwrap().to_string_lossy()
        );
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&abstract_name).unwrap();
        let abstract_listener = UnixListener::bind_addr(&addr).unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp6 = UdpSocket::bind("[::1]:0").ok();
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp6 = TcpListener::bind("[::1]:0").ok();
        for l in [&stream, &abstract_listener] {
            l.set_nonblocking(true).unwrap();
        }
        for l in std::iter::once(&tcp).chain(&tcp6) {
            l.set_nonblocking(true).unwrap();
        }
        dgram.set_nonblocking(true).unwrap();
        udp.set_nonblocking(true).unwrap();
        if let Some(u) = &udp6 {
            u.set_nonblocking(true).unwrap();
        }
        Services {
            stream,
            stream_path,
            dgram,
            dgram_path,
            abstract_listener,
            abstract_name,
            udp,
            udp6,
            tcp,
            tcp6,
        }
    }

    fn udp_port(&self) -> String {
        self.udp.local_addr().unwrap().port().to_string()
    }

    /// Everything that reached a service since the last call, by service.
    fn reached(&self) -> Vec<&'static str> {
        let mut reached = Vec::new();
        let mut buf = [0u8; 64];
        // A few tries: a datagram or connection from a probe that just exited is already queued,
        // but give the kernel a moment anyway.
        for _ in 0..3 {
            if self.stream.accept().is_ok() {
                reached.push("unix stream");
            }
            if self.abstract_listener.accept().is_ok() {
                reached.push("abstract unix");
            }
            if self.dgram.recv(&mut buf).is_ok() {
                reached.push("unix datagram");
            }
            if self.udp.recv(&mut buf).is_ok() {
                reached.push("udp");
            }
            if self.udp6.as_ref().is_some_and(|u| u.recv(&mut buf).is_ok()) {
                reached.push("udp6");
            }
            if self.tcp.accept().is_ok() {
                reached.push("tcp");
            }
            if self.tcp6.as_ref().is_some_and(|t| t.accept().is_ok()) {
                reached.push("tcp6");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        reached
    }
}

#[test]
fn io_uring_cannot_reach_a_host_service_or_send_udp() {
    require_probe!();
    for who in users() {
        let arena = Arena::new("uring", who, |_| {});
        let services = Services::start(&arena);
        let unix = services.stream_path.to_str().unwrap().to_string();
        let port = services.udp_port();
        let attacks: [(&str, [&str; 2], &str); 2] = [
            ("unix", ["uring-unix", &unix], "unix stream"),
            ("udp", ["uring-udp", &port], "udp"),
        ];
        for (name, args, service) in attacks {
            let control = arena.run_unconfined(&args);
            let reached = services.reached();
            if !control.is_ok() {
                skip(&format!(
                    "{}: io_uring {name} does not work on this host at all ({control:?})",
                    who.label
                ));
                continue;
            }
            assert_eq!(reached, [service], "{} control {name}", who.label);
            for (label, policy) in policies() {
                let run = arena.run(&policy, &args);
                assert_eq!(
                    services.reached(),
                    Vec::<&str>::new(),
                    "{} {label}: io_uring {name} got out: {run:?}",
                    who.label
                );
                assert_eq!(run.result, format!("errno={}", libc::ENOSYS), "{run:?}");
            }
        }
    }
}

#[test]
fn plain_sockets_cannot_reach_host_services_when_the_network_is_off() {
    require_probe!();
    for who in users() {
        let arena = Arena::new("sockets", who, |_| {});
        let services = Services::start(&arena);
        let stream = services.stream_path.to_str().unwrap().to_string();
        let dgram = services.dgram_path.to_str().unwrap().to_string();
        let port = services.udp_port();
        let port6 = services
            .udp6
            .as_ref()
            .map(|u| u.local_addr().unwrap().port().to_string());
        let tcp_port = services.tcp.local_addr().unwrap().port().to_string();
        let tcp_port6 = services
            .tcp6
            .as_ref()
            .map(|t| t.local_addr().unwrap().port().to_string());
        let mut attacks: Vec<(Vec<&str>, &str)> = vec![
            (vec!["connect-unix", &stream], "unix stream"),
            (
                vec!["connect-abstract", &services.abstract_name],
                "abstract unix",
            ),
            (vec!["dgram-unix", &dgram], "unix datagram"),
            (vec!["dgram-pair-unix", &dgram], "unix datagram"),
            (vec!["udp", &port], "udp"),
            (vec!["tcp", &tcp_port], "tcp"),
        ];
        if let (Some(port6), Some(tcp_port6)) = (&port6, &tcp_port6) {
            attacks.push((vec!["udp6", port6], "udp6"));
            attacks.push((vec!["tcp6", tcp_port6], "tcp6"));
        } else {
            skip("no ::1 on this host: the IPv6 attack is not tried");
        }
        for (args, service) in &attacks {
            let control = arena.run_unconfined(args);
            assert_eq!(
                services.reached(),
                [*service],
                "{} control {args:?}: {control:?}",
                who.label
            );
            for (label, policy) in policies() {
                let run = arena.run(&policy, args);
                assert_eq!(
                    services.reached(),
                    Vec::<&str>::new(),
                    "{} {label}: {args:?} got out: {run:?}",
                    who.label
                );
                assert!(!run.is_ok(), "{} {label} {args:?}: {run:?}", who.label);
            }
        }
        // Sockets with no host service to show an effect on: the kernel must refuse them.
        for family in ["netlink", "raw", "packet"] {
            for (label, policy) in policies() {
                let run = arena.run(&policy, &[family]);
                assert_eq!(
                    run.result,
                    format!("errno={}", libc::EPERM),
                    "{} {label} {family}",
                    who.label
                );
            }
        }
    }
}

#[test]
fn socket_pairs_keep_working_with_send_and_recv() {
    require_probe!();
    for who in users() {
        let arena = Arena::new("pairs", who, |_| {});
        for (label, policy) in policies() {
            let run = arena.run(&policy, &["socketpair-send"]);
            assert!(run.is_ok(), "{} {label}: {run:?}", who.label);
        }
    }
}

#[test]
fn descriptors_leaked_by_the_parent_do_not_reach_the_command() {
    require_probe!();
    const FD: i32 = 9;
    for who in users() {
        let arena = Arena::new("leak", who, |_| {});
        let (host, leaked) = std::os::unix::net::UnixStream::pair().unwrap();
        host.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let received = || {
            let mut buf = [0u8; 64];
            std::io::Read::read(&mut &host, &mut buf).map_or(0, |n| n)
        };
        let fd = FD.to_string();
        let mut control = arena.command(probe_bin());
        control.args(["write-fd", &fd]);
        inherit_fd(&mut control, leaked.as_raw_fd(), FD);
        let run = collect(control);
        assert!(
            run.is_ok() && received() > 0,
            "{} control: {run:?}",
            who.label
        );
        for (label, policy) in policies() {
            let mut cmd = arena.sandboxed(&policy, &["write-fd", &fd]);
            inherit_fd(&mut cmd, leaked.as_raw_fd(), FD);
            let run = collect(cmd);
            assert_eq!(received(), 0, "{} {label}: got out: {run:?}", who.label);
            assert_eq!(run.result, format!("errno={}", libc::EBADF), "{run:?}");
        }
    }
}
