//! A throwaway OpenSSH server on 127.0.0.1 for the remote-transfer tests:
//! its own host key, a high port, a user key, no PAM, no passwords.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running sshd, killed (and reaped) on drop.
pub struct Sshd {
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
    pub fn start() -> Option<Sshd> {
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
                "-o",
                "MaxStartups=100",
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

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The `-e` value for this server with `key`.
    pub fn rsh(&self, key: &str) -> String {
        format!(
            "ssh -i {} -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
             -o BatchMode=yes -o LogLevel=ERROR",
            self.path().join(key).display(),
            self.port
        )
    }
}
