//! The portable parts of `exec`, on every platform: capture buffers, the alias directory, the
//! environment map.

use std::ffi::OsString;

use super::alias::ALIASES;
use super::capture::HeadTail;
use super::env::find_name;
use super::*;

#[test]
fn head_tail_buffer_keeps_both_ends() {
    /// (cap, chunks pushed, bytes kept, bytes dropped)
    type Case<'a> = (usize, &'a [&'a [u8]], &'a [u8], usize);
    let cases: [Case; 6] = [
        (10, &[b"abc"], b"abc", 0),
        (10, &[b"0123456789"], b"0123456789", 0),
        (10, &[b"0123456789ab"], b"01234789ab", 2),
        (10, &[b"01234", b"56", b"789", b"abcd"], b"012349abcd", 4),
        (4, &[b"a", b"b", b"c", b"d", b"e", b"f"], b"abef", 2),
        (0, &[b"xyz"], b"", 3),
    ];
    for (cap, chunks, expected, dropped) in cases {
        let mut buf = HeadTail::new(cap);
        for chunk in chunks {
            buf.push(chunk);
        }
        assert_eq!(buf.dropped(), dropped, "cap {cap} {chunks:?}");
        assert_eq!(buf.into_bytes(), expected, "cap {cap} {chunks:?}");
    }
}

#[test]
fn empty_argv_is_an_error() {
    let err = sandboxed_command(
        &SandboxPolicy::DangerFullAccess,
        Path::new("."),
        &[],
        &Env::new(),
    )
    .err()
    .unwrap();
    assert_eq!(err.to_string(), "empty command");
}

#[test]
fn the_environment_is_exactly_the_given_one_plus_markers() {
    let env = Env::from([("FOO".into(), "bar".into())]);
    let cmd = sandboxed_command(
        &SandboxPolicy::DangerFullAccess,
        Path::new("."),
        &["prog".to_string()],
        &env,
    )
    .unwrap();
    let envs: Vec<_> = cmd.get_envs().collect();
    assert_eq!(
        envs,
        [(
            std::ffi::OsStr::new("FOO"),
            Some(std::ffi::OsStr::new("bar"))
        )]
    );
}

#[test]
fn env_names_are_found_as_the_os_compares_them() {
    let env = Env::from([("Path".into(), "x".into()), ("PATHEXT".into(), "y".into())]);
    let found = find_name(&env, "PATH");
    if sys::ENV_NAMES_IGNORE_CASE {
        assert_eq!(found, Some(OsString::from("Path")));
    } else {
        assert_eq!(found, None);
    }
    assert_eq!(find_name(&env, "PATHEXT"), Some(OsString::from("PATHEXT")));
}

#[test]
fn alias_dir_links_our_executable_and_is_removed_on_drop() {
    let home = std::env::temp_dir().join(format!("codex-lite-alias-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    // A directory left by a process that no longer exists is swept.
    let stale = home.join("tmp").join("path").join("2147483646-1");
    std::fs::create_dir_all(&stale).unwrap();
    let dir = AliasDir::create(&home).unwrap();
    assert!(!stale.exists());
    let path = dir.path().to_path_buf();
    assert!(path.starts_with(&home));
    let exe_len = std::fs::metadata(std::env::current_exe().unwrap())
        .unwrap()
        .len();
    for name in ALIASES {
        let link = path.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        // A link (or copy) of our own executable: same contents.
        assert_eq!(std::fs::metadata(&link).unwrap().len(), exe_len, "{name}");
    }
    let sep = sys::PATH_LIST_SEPARATOR;
    let mut env = Env::from([("PATH".into(), format!("a{sep}b").into())]);
    dir.prepend_to_path(&mut env);
    let mut expected = path.clone().into_os_string();
    expected.push(format!("{sep}a{sep}b"));
    assert_eq!(env[&OsString::from("PATH")], expected);
    let mut empty = Env::new();
    dir.prepend_to_path(&mut empty);
    assert_eq!(
        empty[&OsString::from("PATH")],
        path.clone().into_os_string()
    );
    drop(dir);
    assert!(!path.exists());
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn commands_are_joined_as_a_shell_reads_them() {
    let argv = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    assert_eq!(
        shell_join(&argv(&["bash", "-lc", "echo 'hi there'"])),
        "bash -lc 'echo '\\''hi there'\\'''"
    );
    assert_eq!(shell_join(&argv(&["ls", "-la", ""])), "ls -la ''");
}
