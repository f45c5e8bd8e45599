//! Remote-shell transport end to end: `resync` starts `resync --server`
//! through a fake remote shell (a script that drops `-l USER` and the host and
//! runs the rest with `sh -c`, as ssh would run it on the remote host; rsync's
//! own test suite does the same), the handshake completes, and every failure
//! ends with rsync's message and exit code; a push and a pull run through
//! it (beside rsync run the same way, when installed).

use resync::remote::conn::{FrameReader, FrameWriter};
use resync::remote::handshake::{self, Side};
use resync::remote::proto::{self, Hello, Msg};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_resync");

/// A test directory with `src/a`, a fake rsh that logs its arguments to
/// `rsh.log`, and helpers to run resync in it.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("src")).unwrap();
        fs::write(dir.path().join("src/a"), b"hello\n").unwrap();
        let f = Fixture { dir };
        f.script(
            "lsh.sh",
            &format!(
                "for a; do printf '[%s]' \"$a\"; done > '{}/rsh.log'\n\
                 while [ \"$1\" = -l ]; do shift 2; done\n\
                 shift\n\
                 exec /bin/sh -c \"$*\"\n",
                f.path().display()
            ),
        );
        f
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path().join(name);
        fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .current_dir(self.path())
            .env_remove("RSYNC_RSH")
            .output()
            .unwrap()
    }

    fn rsh_log(&self) -> String {
        fs::read_to_string(self.path().join("rsh.log")).unwrap()
    }

    /// Names in the test directory other than the fixture's own.
    fn extra_names(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !["src", "lsh.sh", "rsh.log"].contains(&n.as_str()) && !n.ends_with(".sh"))
            .collect();
        v.sort();
        v
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// rsync run the same way (same fake rsh, so its server runs in the same
/// directory), when it is installed.
fn rsync(f: &Fixture, args: &[&str]) -> Option<Output> {
    Command::new("rsync").arg("--version").output().ok()?;
    Some(
        Command::new("rsync")
            .args(args)
            .current_dir(f.path())
            .env_remove("RSYNC_RSH")
            .output()
            .unwrap(),
    )
}

/// stdout with the byte figures of the summary blanked (they count each
/// program's own protocol).
fn figures_blanked(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            if l.starts_with("sent ") {
                "sent N".to_string()
            } else if l.starts_with("total size is ") {
                l.split("  speedup").next().unwrap().to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn push_through_a_remote_shell_writes_the_tree() {
    let f = Fixture::new();
    let o = f.run(&[
        "-a",
        "-e",
        "./lsh.sh",
        "--rsync-path",
        BIN,
        "src/",
        "user@host:dst dir/",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty() && o.stderr.is_empty(), "{}", stderr(&o));
    // rsync's command shape: -l user, host, rsync-path, server args, ".", the
    // path escaped for the remote shell.
    assert_eq!(
        f.rsh_log(),
        format!("[-l][user][host][{BIN}][--server][-rlptog][--devices][--specials][.][dst\\ dir/]")
    );
    assert_eq!(fs::read(f.path().join("dst dir/a")).unwrap(), b"hello\n");
    let (s, d) = (
        fs::metadata(f.path().join("src/a")).unwrap(),
        fs::metadata(f.path().join("dst dir/a")).unwrap(),
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (s.mode(), s.mtime(), s.mtime_nsec()),
        (d.mode(), d.mtime(), d.mtime_nsec())
    );
    assert_eq!(f.extra_names(), ["dst dir"]);
}

/// More files than the receiver keeps outstanding (4096): the requests
/// queued in the writer must reach the sender before the receiver waits for
/// room, or both ends wait for each other. Push and pull.
#[test]
fn push_and_pull_of_more_files_than_the_request_window() {
    let f = Fixture::new();
    for d in 0..10 {
        let dir = f.path().join(format!("src/d{d}"));
        fs::create_dir(&dir).unwrap();
        for i in 0..500 {
            fs::write(dir.join(format!("f{i}")), format!("{d}/{i}\n")).unwrap();
        }
    }
    for (from, to) in [("src/", "host:pushed/"), ("host:src/", "pulled/")] {
        let o = f.run(&["-a", "-e", "./lsh.sh", "--rsync-path", BIN, from, to]);
        assert_eq!(o.status.code(), Some(0), "{from}: {}", stderr(&o));
        let dest = f.path().join(to.trim_start_matches("host:"));
        for d in 0..10 {
            for i in 0..500 {
                let got = fs::read(dest.join(format!("d{d}/f{i}"))).unwrap();
                assert_eq!(got, format!("{d}/{i}\n").into_bytes(), "{to} d{d}/f{i}");
            }
        }
    }
}

#[test]
fn pull_through_a_remote_shell_prints_what_rsync_prints() {
    let f = Fixture::new();
    fs::create_dir(f.path().join("src/sub")).unwrap();
    fs::write(f.path().join("src/sub/b"), b"bb").unwrap();
    let args = |dst: &'static str| -> Vec<&'static str> {
        vec!["-av", "-e", "./lsh.sh", "host:src/", dst]
    };
    let mut mine = args("dst");
    mine.extend(["--rsync-path", BIN]);
    let o = f.run(&mine);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        f.rsh_log(),
        format!("[host][{BIN}][--server][--sender][-vrlptog][--devices][--specials][.][src/]")
    );
    assert_eq!(fs::read(f.path().join("dst/sub/b")).unwrap(), b"bb");
    let want = "receiving incremental file list\ncreated directory dst\n./\na\nsub/\nsub/b\n\nsent N\ntotal size is 8";
    assert_eq!(figures_blanked(&o), want);
    if let Some(r) = rsync(&f, &args("rdst")) {
        assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
        assert_eq!(figures_blanked(&r).replace("rdst", "dst"), want);
    }
}

#[test]
fn rsync_rsh_environment_variable_is_the_default_shell() {
    let f = Fixture::new();
    let o = Command::new(BIN)
        .args(["--rsync-path", BIN, "src/a", "host:dst"])
        .current_dir(f.path())
        .env("RSYNC_RSH", "./lsh.sh")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(f.rsh_log().starts_with("[host]"));
    assert_eq!(fs::read(f.path().join("dst")).unwrap(), b"hello\n");
}

#[test]
fn options_not_supported_remotely_are_refused_before_connecting() {
    let f = Fixture::new();
    for (opt, name) in [
        ("--gitignore", "--gitignore"),
        ("--trust-mtime", "--trust-mtime"),
    ] {
        let o = f.run(&["-a", opt, "-e", "./lsh.sh", "src/", "host:dst/"]);
        assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
        assert_eq!(
            stderr(&o),
            format!(
                "resync: {name} is not supported for remote transfers yet\n\
                 resync error: requested action not supported (code 4) [sender=0.1.0]\n"
            )
        );
        assert!(!f.path().join("rsh.log").exists(), "the remote shell ran");
    }
}

/// The bytes a future resync speaking only protocol 9 would send.
fn future_hello() -> Vec<u8> {
    let mut b = proto::MAGIC.to_vec();
    b.extend(
        Msg::Hello(Hello {
            min_version: 9,
            max_version: 9,
            caps: 0,
            compress_level: 0,
            program: "resync 9.0.0".into(),
        })
        .encode_frame()
        .unwrap(),
    );
    b
}

#[test]
fn version_mismatch_is_exit_2_on_the_client() {
    let f = Fixture::new();
    fs::write(f.path().join("hello.bin"), future_hello()).unwrap();
    f.script("future.sh", "cat hello.bin; cat >/dev/null\n");
    let o = f.run(&["-e", "./future.sh", "src/", "host:dst/"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "protocol version mismatch: the Client speaks protocol 1 to 1, the Server 9 to 9\n\
         resync error: protocol incompatibility (code 2) [sender=0.1.0]\n"
    );
}

#[test]
fn version_mismatch_is_exit_2_on_the_server() {
    let mut child = Command::new(BIN)
        .args(["--server", ".", "dst/"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&future_hello()).unwrap();
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    // The server still sent its own Hello first (both sides send at once).
    assert!(o.stdout.starts_with(proto::MAGIC));
    assert_eq!(
        stderr(&o),
        "protocol version mismatch: the Client speaks protocol 9 to 9, the Server 1 to 1\n\
         resync error: protocol incompatibility (code 2) [receiver=0.1.0]\n"
    );
}

#[test]
fn a_shell_banner_is_rsyncs_is_your_shell_clean() {
    let f = Fixture::new();
    f.script("banner.sh", "echo 'Welcome to host'; cat >/dev/null\n");
    let o = f.run(&["-e", "./banner.sh", "src/", "host:dst/"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "protocol version mismatch -- is your shell clean?\n\
         (see the rsync manpage for an explanation)\n\
         resync error: protocol incompatibility (code 2) [sender=0.1.0]\n"
    );
}

#[test]
fn a_remote_shell_that_fails_is_rsyncs_exit_code() {
    let f = Fixture::new();
    // Closed without a word: 12.
    let o = f.run(&["-e", "false", "src/", "host:dst/"]);
    assert_eq!(o.status.code(), Some(12));
    assert_eq!(
        stderr(&o),
        "resync: connection unexpectedly closed (0 bytes received so far) [sender]\n\
         resync error: error in rsync protocol data stream (code 12) [sender=0.1.0]\n"
    );
    // ssh's own failure (255) is passed on, as rsync does.
    f.script(
        "ssh255.sh",
        "echo 'ssh: Could not resolve hostname host' >&2; exit 255\n",
    );
    let o = f.run(&["-e", "./ssh255.sh", "host:src/", "dst"]);
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(
        stderr(&o),
        "ssh: Could not resolve hostname host\n\
         resync: connection unexpectedly closed (0 bytes received so far) [Receiver]\n\
         resync error: unexplained error (code 255) [Receiver=0.1.0]\n"
    );
    // A program that does not exist.
    let o = f.run(&["-e", "./no-such-rsh", "src/", "host:dst/"]);
    assert_eq!(o.status.code(), Some(12));
    assert!(stderr(&o).starts_with(
        "resync: [sender] Failed to exec ./no-such-rsh: No such file or directory (2)\n\
         resync error: error in IPC code (code 14) [sender=0.1.0]\n"
    ));
    // The remote side dies after a partial Hello.
    fs::write(f.path().join("half.bin"), &future_hello()[..11]).unwrap();
    f.script("half.sh", "cat half.bin\n");
    let o = f.run(&["-e", "./half.sh", "src/", "host:dst/"]);
    assert_eq!(o.status.code(), Some(12));
    assert_eq!(
        stderr(&o),
        "resync: connection unexpectedly closed (11 bytes received so far) [sender]\n\
         resync error: error in rsync protocol data stream (code 12) [sender=0.1.0]\n"
    );
}

#[test]
fn operand_and_rsh_errors_are_usage_errors() {
    let f = Fixture::new();
    let o = f.run(&["host:a", "b", "dst"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Unexpected local arg: b\n\
         If arg is a remote file/dir, prefix it with a colon (:).\n\
         resync error: syntax or usage error (code 1) [Receiver=0.1.0]\n"
    );
    let o = f.run(&["-e", "ssh 'oops", "src/", "host:dst/"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Missing trailing-' in remote-shell command.\n\
         resync error: syntax or usage error (code 1) [sender=0.1.0]\n"
    );
    // Daemon operands connect to a daemon (tests/daemon.rs); with none
    // listening that is rsync's socket error, exit 10.
    for d in [
        "127.0.0.1::mod/dst",
        "rsync://127.0.0.1:1/mod/dst",
        "resync://127.0.0.1:1/mod",
    ] {
        let o = f.run(&["--port=1", "src/", d]);
        assert_eq!(o.status.code(), Some(10), "{d}");
        assert!(
            stderr(&o).contains("failed to connect to 127.0.0.1 (127.0.0.1)"),
            "{d}: {}",
            stderr(&o)
        );
    }
    // A ':' after a '/' is a local name, as in rsync.
    let o = f.run(&["-a", "src/", "./x:y/"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(fs::read(f.path().join("x:y/a")).unwrap(), b"hello\n");
}

/// Speak to `resync --server` directly with the library, compressed, and
/// check the ways the server's conversation can end.
#[test]
fn server_answers_the_handshake_with_zstd() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut c = Command::new(BIN)
            .args(["--server", ".", "dst/"])
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let r = FrameReader::new(c.stdout.take().unwrap());
        let w = FrameWriter::new(c.stdin.take().unwrap());
        (c, r, w)
    };
    // An empty list, compressed: the receiver creates the destination,
    // ends its phases, sends its counters and says goodbye.
    let (c, mut r, mut w) = start();
    let a = handshake::handshake(Side::Client, &mut r, &mut w, &handshake::our_hello(3)).unwrap();
    assert_eq!((a.version, a.compress_level), (1, 3));
    assert_eq!(a.peer_program, "resync 0.1.0");
    w.send(&Msg::Keepalive).unwrap();
    w.send(&Msg::FileListEnd { total: 0 }).unwrap();
    w.flush().unwrap();
    assert_eq!(r.recv().unwrap(), Msg::Done { phase: 0 });
    w.send(&Msg::Done { phase: 0 }).unwrap();
    w.flush().unwrap();
    assert_eq!(r.recv().unwrap(), Msg::Done { phase: 1 });
    w.send(&Msg::Done { phase: 1 }).unwrap();
    w.flush().unwrap();
    assert!(matches!(r.recv().unwrap(), Msg::Stats { .. }));
    assert_eq!(r.recv().unwrap(), Msg::Goodbye { code: 0 });
    w.send(&Msg::Goodbye { code: 0 }).unwrap();
    w.finish().unwrap();
    let o = c.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    assert!(dir.path().join("dst").is_dir());

    // A message only a receiver sends: refused with Error(12), exit 12.
    let (c, mut r, mut w) = start();
    handshake::handshake(Side::Client, &mut r, &mut w, &handshake::our_hello(3)).unwrap();
    w.send(&Msg::Request {
        index: 0,
        flags: 0,
        offset: 0,
    })
    .unwrap();
    w.flush().unwrap();
    match r.recv().unwrap() {
        Msg::Error { code: 12, message } => {
            assert!(message.contains("unexpected message 0x20"), "{message}")
        }
        m => panic!("{m:?}"),
    }
    drop(w);
    assert_eq!(c.wait_with_output().unwrap().status.code(), Some(12));

    // The client goes away before the end of the list: exit 12, nothing made.
    fs::remove_dir(dir.path().join("dst")).unwrap();
    let (c, mut r, mut w) = start();
    handshake::handshake(Side::Client, &mut r, &mut w, &handshake::our_hello(3)).unwrap();
    w.send(&Msg::Keepalive).unwrap();
    w.flush().unwrap();
    drop(w);
    drop(r);
    let o = c.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(12));
    assert!(
        stderr(&o).starts_with("resync: connection unexpectedly closed ("),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("dst").exists());
}

#[test]
fn server_rejects_a_malformed_frame_with_error_12() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(BIN)
        .args(["--server", ".", "dst/"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut stdin = c.stdin.take().unwrap();
    let mut bytes = proto::MAGIC.to_vec();
    bytes.extend(Msg::Hello(handshake::our_hello(0)).encode_frame().unwrap());
    // FileBatch claiming 1000 entries in a 3-byte payload.
    bytes.extend([proto::kind::FILE_BATCH, 3, 0, 0, 0, 0, 0xe8, 0x07]);
    stdin.write_all(&bytes).unwrap();
    let mut r = FrameReader::new(c.stdout.take().unwrap());
    assert!(r.read_magic().unwrap());
    assert!(matches!(r.recv().unwrap(), Msg::Hello(_)));
    match r.recv().unwrap() {
        Msg::Error { code: 12, message } => {
            assert_eq!(message, "protocol error: truncated FileBatch entry count")
        }
        m => panic!("{m:?}"),
    }
    drop(stdin);
    let o = c.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(12));
    assert_eq!(
        stderr(&o),
        "resync: protocol error: truncated FileBatch entry count [receiver]\n\
         resync error: error in rsync protocol data stream (code 12) [receiver=0.1.0]\n"
    );
}

/// Differential check against the real rsync: for each command line, the
/// words rsync gives its `-e` program before `--rsync-path` (shell words,
/// `-l USER`, host) and after the `.` (the escaped remote paths) are the
/// ones resync gives. Only the server options in between differ (rsync's
/// `-logDtpre.iLsfxCIvu`, resync's `--server [--sender]`).
#[test]
fn remote_shell_words_match_rsync() {
    if Command::new("rsync").arg("--version").output().is_err() {
        eprintln!("skipping: rsync not installed");
        return;
    }
    let f = Fixture::new();
    f.script(
        "log.sh",
        &format!(
            "for a; do printf '[%s]' \"$a\"; done > '{}/words.log'\n",
            f.path().display()
        ),
    );
    let words = |prog: &str, args: &[&str]| -> Vec<String> {
        let _ = fs::remove_file(f.path().join("words.log"));
        let mut rsh = "./log.sh";
        let mut rest = args;
        if let Some(e) = args[0].strip_prefix("-e=") {
            rsh = e;
            rest = &args[1..];
        }
        let o = Command::new(prog)
            .args(["-e", rsh, "--rsync-path", "rp"])
            .args(rest)
            .current_dir(f.path())
            .env_remove("RSYNC_RSH")
            .output()
            .unwrap();
        assert_ne!(o.status.code(), Some(0), "{prog} {args:?}");
        let log = fs::read_to_string(f.path().join("words.log"))
            .unwrap_or_else(|_| panic!("{prog} {args:?} did not run the rsh: {}", stderr(&o)));
        let w: Vec<String> = log
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split("][")
            .map(String::from)
            .collect();
        let rp = w.iter().position(|x| x == "rp").unwrap();
        let dot = rp + w[rp..].iter().position(|x| x == ".").unwrap();
        let mut out = w[..=rp].to_vec();
        out.push("|".into());
        out.extend_from_slice(&w[dot + 1..]);
        out
    };
    let cases: &[&[&str]] = &[
        &["src/", "user@host:dst dir/"],
        &["src/", "host:"],
        &["src/", "[::1]:d"],
        &["src/", "user@[fe80::1]:d"],
        &["src/", "a@b@c:d"],
        &["src/", "host:-dash"],
        &["src/", "host:a$b*c?[x]"],
        &["src/", "host:~x"],
        &["src/", "host:x;y|z&w"],
        &["src/", "host:it's \"q\""],
        &["src/", r"host:a\*b\c"],
        &["src/", "h:/abs/path"],
        &["src/", ":x"],
        &["src/", "rsync://h:x/m"],
        &["host:a", ":b", "host:c", "dst"],
        &["host:~x", "host:~/y", "dd"],
        &["host:a b", "dst"],
        &["-e=./log.sh -l bob", "src/", "u@h:d"],
        &["-e=./log.sh \"x y\" 'a''b' -p 22", "src/", "h:d"],
    ];
    for args in cases {
        assert_eq!(words(BIN, args), words("rsync", args), "{args:?}");
    }
}

#[test]
fn timeout_and_bwlimit_are_forwarded_and_the_tree_is_right() {
    let f = Fixture::new();
    fs::create_dir(f.path().join("src/sub")).unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 253) as u8).collect();
    fs::write(f.path().join("src/sub/big"), &big).unwrap();
    for (from, to) in [("src/", "host:pushed/"), ("host:src/", "pulled/")] {
        let o = f.run(&[
            "-a",
            "--timeout=30",
            "--bwlimit=10M",
            "-e",
            "./lsh.sh",
            "--rsync-path",
            BIN,
            from,
            to,
        ]);
        assert_eq!(o.status.code(), Some(0), "{from}: {}", stderr(&o));
        let log = f.rsh_log();
        assert!(log.contains("[--timeout=30][--bwlimit=10240]"), "{log}");
        let dest = f.path().join(to.trim_start_matches("host:"));
        assert_eq!(fs::read(dest.join("a")).unwrap(), b"hello\n");
        assert_eq!(fs::read(dest.join("sub/big")).unwrap(), big);
    }
    // rsync forwards both the same way (in KiB/s).
    if let Some(r) = rsync(
        &f,
        &[
            "-a",
            "--timeout=30",
            "--bwlimit=10M",
            "-e",
            "./lsh.sh",
            "src/",
            "host:rdst/",
        ],
    ) {
        assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
        let log = f.rsh_log();
        assert!(
            log.contains("[--timeout=30]") && log.contains("[--bwlimit=10240]"),
            "{log}"
        );
    }
}

#[test]
fn bad_bwlimit_values_are_rsyncs_usage_errors() {
    let f = Fixture::new();
    for (v, why) in [
        ("abc", "is invalid"),
        ("-1", "is too large"),
        ("100b", "is too small (min: 512 or 0 for unlimited)"),
        ("1b", "is too small (min: 512 or 0 for unlimited)"),
    ] {
        let opt = format!("--bwlimit={v}");
        let o = f.run(&["-a", &opt, "-e", "./lsh.sh", "src/", "host:dst/"]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let first = stderr(&o).lines().next().unwrap_or_default().to_string();
        assert_eq!(first, format!("resync: {opt} {why}"));
        if let Some(r) = rsync(&f, &["-a", &opt, "-e", "./lsh.sh", "src/", "host:dst/"]) {
            assert_eq!(r.status.code(), Some(1));
            let theirs = stderr(&r).lines().next().unwrap_or_default().to_string();
            assert_eq!(theirs.replacen("rsync: ", "resync: ", 1), first);
        }
    }
    assert!(!f.path().join("dst").exists());
    // A local copy has no transport to pace yet: refused, not ignored.
    let o = f.run(&["-a", "--bwlimit=100", "src/", "local/"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "resync: --bwlimit is not supported for local transfers yet\n\
         resync error: requested action not supported (code 4) [client=0.1.0]\n"
    );
    assert!(!f.path().join("local").exists());
}

#[test]
fn a_remote_shell_that_never_answers_is_rsyncs_io_timeout() {
    let f = Fixture::new();
    f.script("stall.sh", "exec sleep 4 2>/dev/null\n");
    for (args, role) in [
        (["src/", "host:dst/"], "sender"),
        (["host:src/", "dst/"], "Receiver"),
    ] {
        let mut a = vec!["-a", "--timeout=1", "-e", "./stall.sh"];
        a.extend(args);
        let o = f.run(&a);
        assert_eq!(o.status.code(), Some(30), "{}", stderr(&o));
        let want = format!(
            "[{role}] io timeout after 1 seconds -- exiting\n\
             resync error: timeout in data send/receive (code 30) [{role}=0.1.0]\n"
        );
        assert_eq!(stderr(&o), want);
        if let Some(r) = rsync(&f, &a) {
            assert_eq!(r.status.code(), Some(30), "{}", stderr(&r));
            let theirs = stderr(&r);
            let first = theirs.lines().next().unwrap_or_default();
            assert_eq!(first, want.lines().next().unwrap());
        }
    }
    assert!(!f.path().join("dst").exists());
}
