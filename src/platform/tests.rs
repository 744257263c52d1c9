//! The portable OS facilities, on every platform.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;

use super::*;

fn scratch(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("codex-lite-platform-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn os_name_and_release_are_known() {
    let (name, release) = os_name_and_release();
    assert!(!name.is_empty());
    assert_ne!(release, "unknown");
}

#[test]
fn private_files_are_new_only() {
    let dir = scratch("private");
    let path = dir.join("f");
    let mut file = create_private_file(&path).unwrap();
    file.write_all(b"x").unwrap();
    drop(file);
    let err = create_private_file(&path).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    sync_dir(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn private_files_are_owner_only_and_never_follow_a_symlink() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("private-unix");
    let path = dir.join("f");
    drop(create_private_file(&path).unwrap());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // A dangling symlink planted where the file goes is not followed.
    let target = dir.join("target");
    let link = dir.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(create_private_file(&link).is_err());
    assert!(!target.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_wake_interrupts_the_wait_and_a_connection_is_seen() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let (waker, wake) = wake_pair().unwrap();
    let started = Instant::now();
    assert_eq!(
        wait_readable(&listener, &wake, Duration::from_millis(50)).unwrap(),
        (false, false)
    );
    assert!(started.elapsed() >= Duration::from_millis(40));
    waker.wake();
    waker.wake();
    assert_eq!(
        wait_readable(&listener, &wake, Duration::from_secs(10)).unwrap(),
        (false, true)
    );
    wake.drain();
    assert_eq!(
        wait_readable(&listener, &wake, Duration::from_millis(1)).unwrap(),
        (false, false)
    );
    let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    assert_eq!(
        wait_readable(&listener, &wake, Duration::from_secs(10)).unwrap(),
        (true, false)
    );
}

#[test]
fn connect_abortable_connects_and_stops_when_aborted() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let slice = Duration::from_millis(10);
    let stream = connect_abortable(&addr, None, &AtomicBool::new(false), slice).unwrap();
    assert_eq!(stream.peer_addr().unwrap(), addr);
    let err = connect_abortable(&addr, None, &AtomicBool::new(true), slice);
    // Either the connect finished before the first look at the flag, or it was interrupted.
    if let Err(err) = err {
        assert_eq!(err.kind(), io::ErrorKind::Interrupted);
    }
}

#[test]
fn poll_sockets_reports_readiness_hangups_and_wakeups() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = connect_nonblocking(&addr).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let (waker, wake) = wake_pair().unwrap();
    let ms = |n| Some(Duration::from_millis(n));
    struct Case {
        name: &'static str,
        /// Done to the server's end first.
        step: fn(&mut TcpStream),
        read: bool,
        write: bool,
        timeout: Option<Duration>,
        /// Readable, writable.
        want: (bool, bool),
    }
    let cases = [
        Case {
            name: "nothing to read: times out",
            step: |_| {},
            read: true,
            write: false,
            timeout: ms(20),
            want: (false, false),
        },
        Case {
            name: "room to send",
            step: |_| {},
            read: false,
            write: true,
            timeout: ms(1000),
            want: (false, true),
        },
        Case {
            name: "data arrived",
            step: |server| server.write_all(b"x").unwrap(),
            read: true,
            write: false,
            timeout: None,
            want: (true, false),
        },
    ];
    for case in cases {
        (case.step)(&mut server);
        let mut entries = [PollEntry::new(
            stream_socket(&client),
            case.read,
            case.write,
        )];
        let ready = poll_sockets(&mut entries, case.timeout).unwrap();
        let got = (entries[0].readable, entries[0].writable);
        assert_eq!(got, case.want, "{}", case.name);
        assert_eq!(ready, usize::from(got != (false, false)), "{}", case.name);
    }
    // A peer gone with our bytes unread resets the connection: an error, reported as both
    // readable and writable even to an entry waiting for nothing.
    (&client).write_all(b"y").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drop(server);
    let mut entries = [PollEntry::new(stream_socket(&client), false, false)];
    assert_eq!(poll_sockets(&mut entries, ms(1000)).unwrap(), 1, "reset");
    assert!(entries[0].readable && entries[0].writable, "reset");
    let mut entries = [PollEntry::new(wake.raw_socket(), true, false)];
    assert_eq!(poll_sockets(&mut entries, Some(Duration::ZERO)).unwrap(), 0);
    waker.wake();
    assert_eq!(poll_sockets(&mut entries, ms(1000)).unwrap(), 1);
    assert!(entries[0].readable);
}

#[test]
fn connect_nonblocking_returns_at_once_and_reports_refusal_on_the_socket() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let refused = match connect_nonblocking(&addr) {
        Err(e) => e,
        Ok(stream) => {
            let mut entries = [PollEntry::new(stream_socket(&stream), false, true)];
            poll_sockets(&mut entries, Some(Duration::from_secs(5))).unwrap();
            assert!(entries[0].writable, "a finished connect is writable");
            stream.take_error().unwrap().expect("the refusal")
        }
    };
    assert_eq!(
        refused.kind(),
        io::ErrorKind::ConnectionRefused,
        "{refused}"
    );
}

#[test]
fn program_names_drop_the_directory_and_the_executable_suffix() {
    let exe = std::env::consts::EXE_SUFFIX;
    let cases = [
        ("apply_patch".to_string(), "apply_patch"),
        ("/usr/local/bin/applypatch".to_string(), "applypatch"),
        (format!("apply_patch{exe}"), "apply_patch"),
        (format!("x{}", exe.to_uppercase()), "x"),
        (".exe".to_string(), if exe.is_empty() { ".exe" } else { "" }),
    ];
    for (argv0, name) in cases {
        assert_eq!(
            program_name(std::ffi::OsStr::new(&argv0)).as_deref(),
            Some(name),
            "{argv0}"
        );
    }
}

/// A descriptor that is not close-on-exec (what a parent leaks to us).
#[cfg(unix)]
fn leaked_descriptor() -> libc::c_int {
    // SAFETY: open(2) of a NUL-terminated path without O_CLOEXEC.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
    assert!(fd > 2);
    fd
}

#[cfg(unix)]
fn descriptor_flags(fd: libc::c_int) -> libc::c_int {
    // SAFETY: F_GETFD on a number; -1 when it is not open.
    unsafe { libc::fcntl(fd, libc::F_GETFD) }
}

#[cfg(unix)]
#[test]
fn inherited_descriptors_become_close_on_exec_and_stay_open() {
    for walk in [
        keep_inherited_descriptors_from_children as fn(),
        sys::cloexec_each_descriptor,
    ] {
        let fd = leaked_descriptor();
        assert_eq!(descriptor_flags(fd) & libc::FD_CLOEXEC, 0);
        walk();
        let flags = descriptor_flags(fd);
        assert!(flags >= 0, "descriptor {fd} was closed");
        assert_ne!(flags & libc::FD_CLOEXEC, 0, "descriptor {fd}");
        // SAFETY: closing the duplicate made above.
        unsafe { libc::close(fd) };
    }
}
