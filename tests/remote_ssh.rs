//! A real OpenSSH server on 127.0.0.1 (`common::sshd`): `resync` reaching
//! `resync --server` through `ssh`, a push and a pull, and the failures of the
//! connection itself (wrong key, a remote program that is not resync). Needs root
//! (sshd's privilege separation) and OpenSSH (`test.sh` installs it); skipped
//! with a note otherwise.

mod common;

use common::sshd::Sshd;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_resync");

fn resync(cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("RSYNC_RSH")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn push_pull_over_real_ssh_and_auth_failure() {
    let Some(sshd) = Sshd::start() else { return };
    let work = tempfile::tempdir().unwrap();
    fs::create_dir(work.path().join("src")).unwrap();
    fs::write(work.path().join("src/a"), b"x").unwrap();
    let remote_dst: PathBuf = sshd.path().join("dst");
    let user = "root@127.0.0.1";
    let rsh = sshd.rsh("user_key");

    let target = format!("{user}:{}/", remote_dst.display());
    let o = resync(
        work.path(),
        &["-a", "-e", &rsh, "--rsync-path", BIN, "src/", &target],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty() && o.stderr.is_empty(), "{}", stderr(&o));
    assert_eq!(fs::read(remote_dst.join("a")).unwrap(), b"x");

    let source = format!("{user}:{}/", work.path().join("src").display());
    let o = resync(
        work.path(),
        &["-a", "-e", &rsh, "--rsync-path", BIN, &source, "pulled"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(fs::read(work.path().join("pulled/a")).unwrap(), b"x");

    // A key the server does not accept: ssh fails (255), passed on as rsync does.
    let o = resync(
        work.path(),
        &[
            "-e",
            &sshd.rsh("other_key"),
            "--rsync-path",
            BIN,
            "src/",
            &target,
        ],
    );
    assert_eq!(o.status.code(), Some(255), "{}", stderr(&o));
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    assert!(stderr(&o).ends_with(
        "resync: connection unexpectedly closed (0 bytes received so far) [sender]\n\
         resync error: unexplained error (code 255) [sender=0.1.0]\n"
    ));

    // A remote program that is not resync (rsync's "is your shell clean?");
    // it exits before the shell would complain about "--server".
    let o = resync(
        work.path(),
        &[
            "-e",
            &rsh,
            "--rsync-path",
            "echo hello; exit 0;",
            "src/",
            &target,
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "protocol version mismatch -- is your shell clean?\n\
         (see the rsync manpage for an explanation)\n\
         resync error: protocol incompatibility (code 2) [sender=0.1.0]\n"
    );
}
