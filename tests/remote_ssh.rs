//! The handshake over a real OpenSSH server on 127.0.0.1: an `sshd` started
//! for the test (own host key, high port, throwaway user key, no PAM, no
//! passwords), `resync` reaching `resync --server` through `ssh`. Needs root
//! (sshd's privilege separation) and OpenSSH (`test.sh` installs it); skipped
//! with a note otherwise.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_resync");

/// A running sshd, killed (and reaped) on drop.
struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
}

impl Sshd {
    /// Start sshd, or `None` (with a note) when this machine cannot.
    fn start() -> Option<Sshd> {
        let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        let Some(sshd) = sshd else {
            eprintln!("skipping: no sshd (apt-get install openssh-server)");
            return None;
        };
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipping: sshd needs root here");
            return None;
        }
        // sshd's privilege-separation directory.
        fs::create_dir_all("/run/sshd").ok()?;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("user_key"));
        fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        keygen(&d.join("other_key"));
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let o = |k: &str, v: &Path| format!("{k}={}", v.display());
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f", "/dev/null", "-p", &port.to_string()])
            .args(["-o", "ListenAddress=127.0.0.1"])
            .args(["-o", &o("HostKey", &d.join("host_key"))])
            .args(["-o", &o("AuthorizedKeysFile", &d.join("authorized_keys"))])
            .args(["-o", &o("PidFile", &d.join("sshd.pid"))])
            .args(["-o", "StrictModes=no", "-o", "UsePAM=no"])
            .args([
                "-o",
                "PermitRootLogin=yes",
                "-o",
                "PasswordAuthentication=no",
            ])
            .args([
                "-o",
                "KbdInteractiveAuthentication=no",
                "-o",
                "LogLevel=ERROR",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sshd");
        let s = Sshd { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(s)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The `-e` value for this server with `key`.
    fn rsh(&self, key: &str) -> String {
        format!(
            "ssh -i {} -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
             -o BatchMode=yes -o LogLevel=ERROR",
            self.path().join(key).display(),
            self.port
        )
    }
}

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
fn handshake_over_real_ssh_push_pull_and_auth_failure() {
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
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "resync: remote transfers are not supported yet (handshake with resync 0.1.0 completed: \
         protocol 1, compression off; nothing was transferred)\n\
         resync error: requested action not supported (code 4) [sender=0.1.0]\n"
    );
    assert!(!remote_dst.exists());

    let source = format!("{user}:{}/", work.path().join("src").display());
    let o = resync(
        work.path(),
        &["-a", "-e", &rsh, "--rsync-path", BIN, &source, "pulled"],
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).ends_with("[Receiver=0.1.0]\n"), "{}", stderr(&o));
    assert!(!work.path().join("pulled").exists());

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
