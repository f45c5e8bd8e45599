//! `resync --daemon` end to end: a real daemon on 127.0.0.1 (random free
//! port, certificates made with rcgen), the real `resync` client against
//! it, and, where rsync has the same behaviour, the real `rsync --daemon`
//! beside it as the oracle for messages and exit codes.
//!
//! A connection that passes every check runs a real transfer after the
//! daemon's `Ready`: those cases check the files that arrive.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_resync");

/// A CA and a server certificate it signed (for `localhost` and 127.0.0.1).
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
    /// A client certificate signed by the same CA.
    client_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "resync test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let ckey = KeyPair::generate().unwrap();
    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client.distinguished_name.push(DnType::CommonName, "alice");
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let ccert = client.signed_by(&ckey, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        client_pem: ccert.pem(),
        client_key_pem: ckey.serialize_pem(),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, child: &mut Child) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(s)) = child.try_wait() {
            panic!("daemon exited early: {s}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("daemon did not listen on {port}");
}

/// The module sections both daemons get (paths under `d`).
fn modules(d: &Path) -> String {
    let p = d.display();
    format!(
        "uid = 0\ngid = 0\nuse chroot = no\n\
         [pub]\npath = {p}/m\ncomment = public files\n\
         [hidden]\npath = {p}/m\nlist = no\n\
         [sec]\npath = {p}/m\nauth users = alice\nsecrets file = {p}/secrets\n\
         [ro]\npath = {p}/m\nread only = yes\n\
         [wo]\npath = {p}/m\nread only = no\nwrite only = yes\n\
         [deny]\npath = {p}/m\nhosts deny = 127.0.0.1\n\
         [allow]\npath = {p}/m\nhosts allow = 10.0.0.0/8\n\
         [refw]\npath = {p}/m\nread only = no\nrefuse options = delete\n\
         [refz]\npath = {p}/m\nread only = no\nrefuse options = compress\n\
         [jail]\npath = {p}/m\n\
         [chr]\npath = {p}/m\nuse chroot = yes\n\
         [lim]\npath = {p}/m\nmax connections = 1\nlock file = {p}/lock\n\
         auth users = alice\nsecrets file = {p}/secrets\n\
         [nob]\npath = {p}/priv\nlist = no\nuid = nobody\ngid = nogroup\n\
         [wr]\npath = {p}/wr\nlist = no\nread only = no\nuid = nobody\ngid = nogroup\n\
         [rules]\npath = {p}/m\nlist = no\nread only = yes\nauth users = bob:deny alice:rw\n\
         secrets file = {p}/secrets\n"
    )
}

/// A running daemon (resync's or rsync's) in its own directory.
struct Daemon {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Files every daemon directory has: the module tree, secrets, motd.
fn fixture(d: &Path) {
    fs::create_dir_all(d.join("m/sub")).unwrap();
    fs::create_dir_all(d.join("priv")).unwrap();
    fs::set_permissions(d.join("priv"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(d.join("m/f"), b"data\n").unwrap();
    std::os::unix::fs::symlink("/etc", d.join("m/esc")).unwrap();
    std::os::unix::fs::symlink("sub", d.join("m/inside")).unwrap();
    fs::write(d.join("secrets"), "alice:secret\nbob:bobpw\n").unwrap();
    fs::set_permissions(d.join("secrets"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(d.join("motd"), "welcome to the test daemon\n").unwrap();
    fs::create_dir_all(d.join("xdg")).unwrap();
    fs::create_dir_all(d.join("src")).unwrap();
    fs::write(d.join("src/a"), b"a\n").unwrap();
    // `wr` (uid nobody): writable but for `locked`, which root keeps.
    fs::create_dir_all(d.join("wr/locked")).unwrap();
    fs::create_dir_all(d.join("wr/open")).unwrap();
    if let Some(nobody) = nobody_uid() {
        std::os::unix::fs::chown(d.join("wr"), Some(nobody), None).unwrap();
        std::os::unix::fs::chown(d.join("wr/open"), Some(nobody), None).unwrap();
    }
}

/// The uid of `nobody`, when there is one.
fn nobody_uid() -> Option<u32> {
    let o = Command::new("id").args(["-u", "nobody"]).output().ok()?;
    String::from_utf8_lossy(&o.stdout).trim().parse().ok()
}

impl Daemon {
    /// resync's daemon; `extra` goes into the global section.
    fn resync(pki: &Pki, extra: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fixture(d);
        fs::write(d.join("ca.pem"), &pki.ca_pem).unwrap();
        fs::write(d.join("cert.pem"), &pki.cert_pem).unwrap();
        fs::write(d.join("key.pem"), &pki.key_pem).unwrap();
        fs::write(d.join("client.pem"), &pki.client_pem).unwrap();
        fs::write(d.join("client-key.pem"), &pki.client_key_pem).unwrap();
        Self::start_resync(dir, free_port(), extra)
    }

    fn start_resync(dir: tempfile::TempDir, port: u16, extra: &str) -> Daemon {
        let d = dir.path();
        let conf = format!(
            "port = {port}\naddress = 127.0.0.1\ntls cert = {p}/cert.pem\ntls key = {p}/key.pem\n\
             motd file = {p}/motd\nlog file = {p}/log\n{}\n{}",
            extra.replace("@DIR@", &d.display().to_string()),
            modules(d),
            p = d.display()
        );
        fs::write(d.join("d.conf"), conf).unwrap();
        let mut child = Command::new(BIN)
            .args(["--daemon", "--no-detach", "--config"])
            .arg(d.join("d.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, &mut child);
        Daemon { dir, port, child }
    }

    /// The real rsync daemon with the same modules, if rsync is installed.
    fn rsync() -> Option<Daemon> {
        Command::new("rsync").arg("--version").output().ok()?;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fixture(d);
        let port = free_port();
        let conf = format!(
            "port = {port}\naddress = 127.0.0.1\nmotd file = {p}/motd\nlog file = {p}/log\n\
             pid file = {p}/pid\n{}",
            modules(d),
            p = d.display()
        );
        fs::write(d.join("d.conf"), conf).unwrap();
        let mut child = Command::new("rsync")
            .args(["--daemon", "--no-detach", "--config"])
            .arg(d.join("d.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        wait_for_port(port, &mut child);
        Some(Daemon { dir, port, child })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn url(&self, rest: &str) -> String {
        format!("resync://127.0.0.1:{}/{rest}", self.port)
    }

    /// Run the resync client with `--ca-file` (the daemon's CA).
    fn client(&self, args: &[&str]) -> Output {
        let mut a = vec![
            "--ca-file".to_string(),
            self.path().join("ca.pem").display().to_string(),
        ];
        a.extend(args.iter().map(|s| s.to_string()));
        self.client_raw(&a, &[])
    }

    fn client_raw(&self, args: &[String], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(self.path())
            .env("XDG_CONFIG_HOME", self.path().join("xdg"))
            .env_remove("RSYNC_PASSWORD")
            .env_remove("USER")
            .env_remove("LOGNAME")
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// Run the real rsync client against this (rsync) daemon.
    fn rsync_client(&self, args: &[String], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new("rsync");
        c.args(args)
            .current_dir(self.path())
            .env_remove("RSYNC_PASSWORD")
            .env_remove("USER")
            .env_remove("LOGNAME")
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.path().join("log")).unwrap_or_default()
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// rsync's stderr in resync's words: program name, no source location,
/// resync's version.
fn as_resync(s: &str) -> String {
    s.lines()
        .map(|l| {
            let l = l
                .replacen("rsync error:", "resync error:", 1)
                .replacen("rsync: ", "resync: ", 1);
            let l = match (l.find(" at "), l.rfind(" [")) {
                (Some(a), Some(b)) if l.starts_with("resync error") && a < b => {
                    format!("{}{}", &l[..a], &l[b..])
                }
                _ => l,
            };
            format!(
                "{}\n",
                l.replace("=3.5.0]", "=0.1.0]")
                    .replace("=3.4.1]", "=0.1.0]")
            )
        })
        .collect()
}

/// Run the same operand against both daemons (rsync's in rsync:// form).
fn both(
    ours: &Daemon,
    theirs: &Option<Daemon>,
    pre: &[&str],
    rest: &str,
    env: &[(&str, &str)],
) -> (Output, Option<Output>) {
    let mut a: Vec<String> = vec![
        "--ca-file".into(),
        ours.path().join("ca.pem").display().to_string(),
    ];
    a.extend(pre.iter().map(|s| s.to_string()));
    a.push(ours.url(rest));
    let o = ours.client_raw(&a, env);
    let t = theirs.as_ref().map(|t| {
        let mut a: Vec<String> = pre.iter().map(|s| s.to_string()).collect();
        a.push(format!("rsync://127.0.0.1:{}/{rest}", t.port));
        t.rsync_client(&a, env)
    });
    (o, t)
}

const MOTD: &str = "welcome to the test daemon\n\n";
const LISTING: &str = "pub            \tpublic files\n\
                       sec            \t\n\
                       ro             \t\n\
                       wo             \t\n\
                       deny           \t\n\
                       allow          \t\n\
                       refw           \t\n\
                       refz           \t\n\
                       jail           \t\n\
                       chr            \t\n\
                       lim            \t\n";

#[test]
fn module_listing_hides_list_no_modules_like_rsync() {
    let d = Daemon::resync(&pki(), "");
    let o = d.client(&[&d.url("")]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), format!("{MOTD}{LISTING}"));
    assert!(!out(&o).contains("hidden"));
    // `host::` with --port, and --no-motd.
    let port = d.port.to_string();
    let o = d.client(&["--port", &port, "--no-motd", "127.0.0.1::"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), LISTING);
    // --address binds the outgoing socket.
    let o = d.client(&["--address", "127.0.0.2", "--no-motd", &d.url("")]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), LISTING);
    let log = d.log();
    assert!(log.contains(" (127.0.0.2)\n"), "{log}");
    assert!(
        log.contains("] connect from localhost (127.0.0.1)\n"),
        "{log}"
    );
    assert!(
        log.contains("] module-list request from localhost (127.0.0.1)\n"),
        "{log}"
    );
    if let Some(r) = Daemon::rsync() {
        let t = r.rsync_client(&[format!("rsync://127.0.0.1:{}/", r.port)], &[]);
        assert_eq!(t.status.code(), Some(0));
        assert_eq!(out(&t), out(&d.client(&[&d.url("")])));
    }
}

#[test]
fn unknown_module_denied_host_and_read_only_match_rsync() {
    let d = Daemon::resync(&pki(), "");
    let r = Daemon::rsync();
    // (operand, extra args, exit code, the first stderr line)
    let src = d.path().join("src/a").display().to_string();
    let cases: [(&[&str], &str, i32, &str); 5] = [
        (&[], "nope/", 5, "@ERROR: Unknown module 'nope'"),
        (
            &[],
            "deny/",
            5,
            "@ERROR: access denied to deny from localhost (127.0.0.1)",
        ),
        (
            &[],
            "allow/",
            5,
            "@ERROR: access denied to allow from localhost (127.0.0.1)",
        ),
        (&[&src], "ro/", 1, "ERROR: module is read only"),
        (&[], "wo/", 1, "ERROR: module is write only"),
    ];
    for (pre, rest, code, line) in cases {
        let (o, t) = both(&d, &r, pre, rest, &[]);
        assert_eq!(o.status.code(), Some(code), "{rest}: {}", err(&o));
        assert_eq!(out(&o), MOTD, "{rest}");
        assert_eq!(err(&o).lines().next(), Some(line), "{rest}: {}", err(&o));
        if let Some(t) = t {
            assert_eq!(t.status.code(), Some(code), "rsync {rest}: {}", err(&t));
            assert_eq!(
                as_resync(&err(&t)).lines().next(),
                Some(line),
                "rsync {rest}"
            );
            // Both lines, exactly (role and code included); rsync's
            // client may add a "read error" line after them.
            let theirs = as_resync(&err(&t));
            let two: String = theirs.lines().take(2).map(|l| format!("{l}\n")).collect();
            assert_eq!(err(&o), two, "{rest}");
        }
    }
}

#[test]
fn auth_success_and_failures() {
    let d = Daemon::resync(&pki(), "");
    let r = Daemon::rsync();
    let failed = "@ERROR: auth failed on module sec\n\
                  resync error: error starting client-server protocol (code 5) [Receiver=0.1.0]\n";
    // Wrong password, and an unknown user with the right one.
    for (user, pw) in [("alice@", "bad"), ("bob@", "secret"), ("", "secret")] {
        let rest = "sec/";
        let mut a: Vec<String> = vec![
            "--ca-file".into(),
            d.path().join("ca.pem").display().to_string(),
        ];
        a.push(format!("resync://{user}127.0.0.1:{}/{rest}", d.port));
        let o = d.client_raw(&a, &[("RSYNC_PASSWORD", pw)]);
        assert_eq!(o.status.code(), Some(5), "{user}{pw}");
        assert_eq!(err(&o), failed, "{user}{pw}");
        if let Some(t) = &r {
            let a = vec![format!("rsync://{user}127.0.0.1:{}/{rest}", t.port)];
            let to = t.rsync_client(&a, &[("RSYNC_PASSWORD", pw)]);
            assert_eq!(to.status.code(), Some(5));
            assert_eq!(as_resync(&err(&to)), failed);
        }
    }
    let log = d.log();
    assert!(
        log.contains("auth failed on module sec from localhost (127.0.0.1) for alice: invalid challenge response"),
        "{log}"
    );
    assert!(log.contains("for bob: no matching rule"), "{log}");
    // The right password passes auth and the pull runs.
    let url = format!("resync://alice@127.0.0.1:{}/sec/", d.port);
    let ca = d.path().join("ca.pem").display().to_string();
    let got = |n: &str| d.path().join(n).display().to_string() + "/";
    let o = d.client_raw(
        &[
            "--ca-file".into(),
            ca.clone(),
            "-a".into(),
            url.clone(),
            got("got1"),
        ],
        &[("RSYNC_PASSWORD", "secret")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(fs::read(d.path().join("got1/f")).unwrap(), b"data\n");
    // `auth users = bob:deny alice:rw`: bob is refused with his right
    // password; alice may push to the read-only module.
    let rules = |user: &str, pw: &str| {
        let src = d.path().join("src/a").display().to_string();
        let url = format!("resync://{user}@127.0.0.1:{}/rules/", d.port);
        d.client_raw(
            &["--ca-file".into(), ca.clone(), src, url],
            &[("RSYNC_PASSWORD", pw)],
        )
    };
    let o = rules("bob", "bobpw");
    assert_eq!(o.status.code(), Some(5));
    assert!(err(&o).starts_with("@ERROR: auth failed on module rules\n"));
    assert!(d.log().contains("for bob: denied by rule"));
    // alice may push to the read-only module (`alice:rw`).
    let o = rules("alice", "secret");
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(fs::read(d.path().join("m/a")).unwrap(), b"a\n");
    // --password-file: missing, other-accessible, then right.
    let pw = d.path().join("pw");
    let pws = pw.display().to_string();
    let o = d.client_raw(
        &[
            "--ca-file".into(),
            ca.clone(),
            "--password-file".into(),
            pws.clone(),
            url.clone(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        err(&o),
        format!(
            "resync: [Receiver] could not open password file {pws}: No such file or directory (2)\n\
             resync error: syntax or usage error (code 1) [Receiver=0.1.0]\n"
        )
    );
    fs::write(&pw, "secret\n").unwrap();
    fs::set_permissions(&pw, fs::Permissions::from_mode(0o644)).unwrap();
    let o = d.client_raw(
        &[
            "--ca-file".into(),
            ca.clone(),
            "--password-file".into(),
            pws.clone(),
            url.clone(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).starts_with("ERROR: password file must not be other-accessible\n"));
    fs::set_permissions(&pw, fs::Permissions::from_mode(0o600)).unwrap();
    let o = d.client_raw(
        &[
            "--ca-file".into(),
            ca.clone(),
            "--password-file".into(),
            pws,
            "-a".into(),
            url.clone(),
            got("got2"),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(fs::read(d.path().join("got2/f")).unwrap(), b"data\n");
    // strict modes: a secrets file others can read is ignored.
    fs::set_permissions(d.path().join("secrets"), fs::Permissions::from_mode(0o644)).unwrap();
    let o = d.client_raw(
        &["--ca-file".into(), ca, url],
        &[("RSYNC_PASSWORD", "secret")],
    );
    assert_eq!(o.status.code(), Some(5));
    assert_eq!(err(&o), failed);
    assert!(
        d.log()
            .contains("secrets file must not be other-accessible")
    );
}

/// A push to `module` with `refused` (an option the module refuses, named
/// `shown` in the message) ends with rsync's message and exit 4 before
/// anything is written, from both daemons; the same push without it runs.
fn refused_like_rsync(module: &str, refused: &str, shown: &str) {
    let d = Daemon::resync(&pki(), "");
    let r = Daemon::rsync();
    let src = format!("{}/", d.path().join("src").display());
    let (o, t) = both(&d, &r, &["-r", refused, &src], module, &[]);
    let want = format!(
        "resync: The server is configured to refuse {shown}\n\
         resync error: requested action not supported (code 4) [Receiver=0.1.0]\n"
    );
    assert_eq!(o.status.code(), Some(4), "{}", err(&o));
    assert_eq!(err(&o), want);
    assert!(!d.path().join("m/a").exists());
    if let Some(t) = t {
        assert_eq!(t.status.code(), Some(4));
        let theirs = as_resync(&err(&t));
        assert!(theirs.starts_with(&want), "{theirs}");
    }
    let o = d.client(&["-r", &src, &d.url(module)]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(fs::read(d.path().join("m/a")).unwrap(), b"a\n");
}

#[test]
fn refused_option_is_exit_4_like_rsync() {
    refused_like_rsync("refw/", "--delete", "--delete");
}

#[test]
fn refused_compress_is_exit_4_like_rsync() {
    // -z travels in the handshake, not among the options, and is refused all
    // the same; without it (adaptive compression is the transport's own) the
    // push runs.
    refused_like_rsync("refz/", "-z", "--compress (-z)");
}

#[test]
fn wrong_ca_is_refused() {
    let d = Daemon::resync(&pki(), "");
    let other = pki();
    let ca = d.path().join("other-ca.pem");
    fs::write(&ca, &other.ca_pem).unwrap();
    let o = d.client_raw(
        &["--ca-file".into(), ca.display().to_string(), d.url("")],
        &[],
    );
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    assert!(
        err(&o).contains("TLS handshake with 127.0.0.1 failed"),
        "{}",
        err(&o)
    );
    assert!(err(&o).contains("invalid peer certificate"), "{}", err(&o));
    assert_eq!(out(&o), "");
}

#[test]
fn first_use_pinning_then_a_changed_certificate_is_refused() {
    let d = Daemon::resync(&pki(), "");
    let kh = d.path().join("xdg/resync/known_hosts");
    let o = d.client_raw(&[d.url("")], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let key = format!("127.0.0.1:{}", d.port);
    assert!(
        err(&o).starts_with(&format!("Warning: Permanently added '{key}' (SHA256:")),
        "{}",
        err(&o)
    );
    let pinned = fs::read_to_string(&kh).unwrap();
    assert!(pinned.starts_with(&format!("{key} SHA256:")), "{pinned}");
    assert_eq!(pinned.lines().count(), 1);
    // Known now: no warning, same listing.
    let o = d.client_raw(&[d.url("")], &[]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(err(&o), "");
    assert_eq!(out(&o), format!("{MOTD}{LISTING}"));
    // The same port with another certificate.
    let port = d.port;
    let mut d = d;
    let _ = d.child.kill();
    let _ = d.child.wait();
    let other = pki();
    fs::write(d.path().join("cert.pem"), &other.cert_pem).unwrap();
    fs::write(d.path().join("key.pem"), &other.key_pem).unwrap();
    let dir = std::mem::replace(&mut d.dir, tempfile::tempdir().unwrap());
    let d2 = Daemon::start_resync(dir, port, "");
    let o = d2.client_raw(&[d2.url("")], &[]);
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    assert!(
        err(&o).contains("WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!"),
        "{}",
        err(&o)
    );
    assert!(err(&o).contains(pinned.split_whitespace().nth(1).unwrap()));
    assert!(err(&o).ends_with(
        "resync error: error starting client-server protocol (code 5) [Receiver=0.1.0]\n"
    ));
    assert_eq!(out(&o), "", "nothing from the daemon is shown");
    assert_eq!(fs::read_to_string(&kh).unwrap(), pinned, "the pin is kept");
}

#[test]
fn plain_tcp_only_when_both_ask() {
    // A TLS daemon refuses a plain client, with its reason.
    let d = Daemon::resync(&pki(), "");
    let o = d.client(&["--plain-tcp", &d.url("")]);
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    assert!(err(&o).starts_with("@ERROR: this daemon only accepts TLS connections"));
    assert_eq!(out(&o), "");
    // A daemon that allows plain TCP still speaks TLS to a TLS client…
    let p = Daemon::resync(&pki(), "plain tcp = yes");
    let o = p.client(&[&p.url("")]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    // …and plain TCP to a client that asks.
    let o = p.client(&["--plain-tcp", &p.url("")]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), format!("{MOTD}{LISTING}"));
}

#[test]
fn garbage_and_silent_clients_do_not_take_the_daemon_down() {
    let mut d = Daemon::resync(&pki(), "timeout = 1");
    // Garbage, a fake TLS record, the magic then nonsense.
    for junk in [
        &b"GET / HTTP/1.0\r\n\r\n"[..],
        &[0x16, 0x03, 0x01, 0xff, 0xff, 0, 0, 0][..],
        &b"resync\0\n\xff\xff\xff\xff\xff"[..],
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        let _ = s.write_all(junk);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.read_to_end(&mut sink);
    }
    // A client that says nothing is dropped after `timeout`.
    let mut silent = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t = Instant::now();
    let mut b = [0u8; 16];
    let n = silent.read(&mut b).unwrap_or(0);
    assert_eq!(n, 0, "the daemon closes a silent connection");
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "daemon still running"
    );
    // A good client afterwards gets its listing.
    let o = d.client(&[&d.url("")]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), format!("{MOTD}{LISTING}"));
    let log = d.log();
    assert!(log.contains("garbage from localhost (127.0.0.1)"), "{log}");
}

#[test]
fn path_jail_refuses_dotdot_and_symlink_escapes() {
    let d = Daemon::resync(&pki(), "");
    for (rest, code, msg) in [
        (
            "jail/../x",
            3,
            "resync: [server] path outside the module refused: ../x",
        ),
        (
            "jail/esc/",
            3,
            "resync: [server] path leads outside the module: esc",
        ),
        (
            "jail/sub/../../etc",
            3,
            "resync: [server] path outside the module refused",
        ),
        (
            "chr/esc/passwd",
            3,
            "resync: [server] path leads outside the module: esc",
        ),
    ] {
        let o = d.client(&[&d.url(rest)]);
        assert_eq!(o.status.code(), Some(code), "{rest}: {}", err(&o));
        assert!(err(&o).starts_with(msg), "{rest}: {}", err(&o));
    }
    // A symlink that stays inside the module, a missing path and a
    // chrooted module pass the jail: the pull runs (a missing source is
    // rsync's exit 23).
    for (i, (rest, code)) in [
        ("jail/inside/", 0),
        ("jail/new/dir", 23),
        ("chr/sub/", 0),
        ("jail/", 0),
    ]
    .into_iter()
    .enumerate()
    {
        let dest = d.path().join(format!("pulled{i}"));
        let dest_s = dest.display().to_string() + "/";
        let o = d.client(&["-a", &d.url(rest), &dest_s]);
        assert_eq!(o.status.code(), Some(code), "{rest}: {}", err(&o));
        if code == 0 {
            assert!(dest.is_dir(), "{rest}");
        }
    }
    assert_eq!(fs::read(d.path().join("pulled3/f")).unwrap(), b"data\n");
    // The escaping symlink itself arrives as a symlink, not followed.
    assert_eq!(
        fs::read_link(d.path().join("pulled3/esc")).unwrap(),
        Path::new("/etc")
    );
}

#[test]
fn max_connections_counts_open_connections() {
    use resync::remote::conn::{FrameReader, FrameWriter};
    use resync::remote::handshake::{self, Side};
    use resync::remote::proto::Msg;
    let d = Daemon::resync(&pki(), "plain tcp = yes");
    // A plain-TCP client that takes the only slot and waits in auth.
    let s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    let mut r = FrameReader::new(s.try_clone().unwrap());
    let mut w = FrameWriter::new(s.try_clone().unwrap());
    handshake::handshake(Side::Client, &mut r, &mut w, &handshake::our_hello(0)).unwrap();
    w.send(&Msg::Start {
        args: vec![
            b"--server".to_vec(),
            b"--sender".to_vec(),
            b".".to_vec(),
            b"lim/".to_vec(),
        ],
    })
    .unwrap();
    w.flush().unwrap();
    loop {
        match r.recv().unwrap() {
            Msg::AuthChallenge { module, .. } => {
                assert_eq!(module, "lim");
                break;
            }
            Msg::Log { .. } => {}
            m => panic!("unexpected {m:?}"),
        }
    }
    let o = d.client_raw(
        &["--plain-tcp".into(), d.url("lim/")],
        &[("RSYNC_PASSWORD", "secret")],
    );
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    assert_eq!(
        err(&o),
        "@ERROR: max connections (1) reached -- try again later\n\
         resync error: error starting client-server protocol (code 5) [Receiver=0.1.0]\n"
    );
    // The slot is free again once that connection is gone.
    drop((r, w, s));
    std::thread::sleep(Duration::from_millis(300));
    let o = d.client_raw(
        &[
            "--plain-tcp".into(),
            "-a".into(),
            format!("resync://alice@127.0.0.1:{}/lim/", d.port),
            d.path().join("got-lim").display().to_string() + "/",
        ],
        &[("RSYNC_PASSWORD", "secret")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(fs::read(d.path().join("got-lim/f")).unwrap(), b"data\n");
}

#[test]
fn contimeout_bounds_a_daemon_that_never_answers() {
    // A listener that accepts nothing: the TCP connect succeeds (backlog),
    // the TLS handshake never gets an answer.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = Instant::now();
    let o = Command::new(BIN)
        .args(["--contimeout=1", &format!("resync://127.0.0.1:{port}/")])
        .env("XDG_CONFIG_HOME", tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(35), "{}", err(&o));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(err(&o).ends_with(
        "resync error: timeout waiting for daemon connection (code 35) [Receiver=0.1.0]\n"
    ));
    drop(l);
}

#[test]
fn daemon_detaches_and_writes_its_pid_file() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fixture(d);
    fs::write(d.join("cert.pem"), &p.cert_pem).unwrap();
    fs::write(d.join("key.pem"), &p.key_pem).unwrap();
    let port = free_port();
    fs::write(
        d.join("d.conf"),
        format!(
            "port = {port}\naddress = 127.0.0.1\ntls cert = {p}/cert.pem\ntls key = {p}/key.pem\n\
             pid file = {p}/pid\nlog file = {p}/log\n[pub]\npath = {p}/m\n",
            p = d.display()
        ),
    )
    .unwrap();
    let st = Command::new(BIN)
        .args(["--daemon", "--config"])
        .arg(d.join("d.conf"))
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0), "the foreground process exits at once");
    let t = Instant::now();
    let pid = loop {
        if let Ok(s) = fs::read_to_string(d.join("pid")) {
            if let Ok(p) = s.trim().parse::<i32>() {
                break p;
            }
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no pid file");
        std::thread::sleep(Duration::from_millis(20));
    };
    let alive = Path::new(&format!("/proc/{pid}")).exists();
    let mut connected = false;
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            connected = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY-free cleanup: kill the daemon we started, by its pid.
    let _ = Command::new("kill").arg(pid.to_string()).status();
    assert!(alive && connected);
    let log = fs::read_to_string(d.join("log")).unwrap();
    assert!(
        log.contains(&format!(
            "resyncd version 0.1.0 starting, listening on port {port}"
        )),
        "{log}"
    );
}

#[test]
fn tls_client_ca_requires_a_client_certificate() {
    let d = Daemon::resync(&pki(), "tls client ca = @DIR@/ca.pem");
    let o = d.client(&[&d.url("")]);
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    assert!(
        err(&o).contains("TLS handshake with 127.0.0.1 failed"),
        "{}",
        err(&o)
    );
    assert_eq!(out(&o), "");
    // A certificate of another CA is refused too.
    let other = pki();
    fs::write(d.path().join("o.pem"), &other.client_pem).unwrap();
    fs::write(d.path().join("o-key.pem"), &other.client_key_pem).unwrap();
    let o = d.client(&["--tls-cert", "o.pem", "--tls-key", "o-key.pem", &d.url("")]);
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    let o = d.client(&[
        "--tls-cert",
        "client.pem",
        "--tls-key",
        "client-key.pem",
        &d.url(""),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), format!("{MOTD}{LISTING}"));
    let o = d.client(&["--tls-cert", "client.pem", &d.url("")]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
}

#[test]
fn module_uid_is_dropped_to_before_any_access() {
    // As root the module's uid/gid (nobody/nogroup) apply before the module
    // is opened: a 0700 root directory is then out of reach.
    if !Path::new("/proc/self").exists() || unsafe_uid() != 0 {
        return;
    }
    let d = Daemon::resync(&pki(), "");
    let o = d.client(&[&d.url("nob/")]);
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    assert_eq!(
        err(&o).lines().next(),
        Some("@ERROR: cannot open module nob: Permission denied (13)"),
        "{}",
        err(&o)
    );
}

fn unsafe_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

#[test]
fn an_idle_tls_connection_is_dropped_after_timeout() {
    use resync::remote::tls;
    let d = Daemon::resync(&pki(), "timeout = 1");
    let cfg = tls::client_config(&tls::Trust::Ca(d.path().join("ca.pem")), None).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::Connection::Client(rustls::ClientConnection::new(cfg, name).unwrap());
    let mut sock = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    tls::complete_handshake(&mut conn, &mut sock).unwrap();
    // Handshake done, then silence: the daemon's idle limit ends it after 1 s.
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    // The log line follows the close: wait for it (a loaded machine is slow).
    let t = Instant::now();
    while !d.log().contains("idle, dropped") && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.log().contains("idle, dropped"), "{}", d.log());
}

#[test]
fn a_missing_config_file_is_rsyncs_error() {
    let o = Command::new(BIN)
        .args([
            "--daemon",
            "--no-detach",
            "--config",
            "/nonexistent/rsyncd.conf",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        err(&o),
        "Failed to parse config file: /nonexistent/rsyncd.conf\n"
    );
    if let Ok(t) = Command::new("rsync")
        .args([
            "--daemon",
            "--no-detach",
            "--config",
            "/nonexistent/rsyncd.conf",
        ])
        .output()
    {
        assert_eq!(t.status.code(), Some(1));
        assert_eq!(err(&t), err(&o));
    }
    // No certificate and no `plain tcp = yes`: refused at start.
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("d.conf");
    fs::write(&conf, "[m]\npath = /tmp\n").unwrap();
    let o = Command::new(BIN)
        .args(["--daemon", "--no-detach", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("the daemon needs \"tls cert\" and \"tls key\""));
}

#[test]
fn receiver_options_of_a_push_work_inside_the_module_only() {
    let d = Daemon::resync(&pki(), "");
    let m = d.path().join("m");
    let push = |args: &[&str], to: &str| {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend(["src/".to_string(), d.url(to)]);
        let mut full = vec![
            "--ca-file".to_string(),
            d.path().join("ca.pem").display().to_string(),
        ];
        full.extend(a);
        d.client_raw(&full, &[])
    };
    let o = push(&["-a"], "refw/dst/");
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    // A changed file: its old version goes to the backup dir beside dst.
    fs::write(d.path().join("src/a"), b"new a\n").unwrap();
    let o = push(&["-a", "--backup-dir=../bk"], "refw/dst/");
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(fs::read(m.join("bk/a")).unwrap(), b"a\n");
    assert_eq!(fs::read(m.join("dst/a")).unwrap(), b"new a\n");
    // A snapshot linked against the previous one.
    let o = push(&["-a", "--link-dest=../dst"], "refw/snap/");
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let (a, b) = (
        fs::metadata(m.join("dst/a")).unwrap(),
        fs::metadata(m.join("snap/a")).unwrap(),
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!((a.ino(), b.nlink()), (b.ino(), 2));
    // Paths that leave the module are refused before anything is written.
    for (opt, what) in [
        ("--backup-dir=../../out", "--backup-dir"),
        ("--link-dest=/etc", "--link-dest/--copy-dest/--compare-dest"),
        ("--temp-dir=../../..", "--temp-dir"),
        ("--partial-dir=../../p", "--partial-dir"),
    ] {
        let o = push(&["-a", opt], "refw/dst/");
        assert_eq!(o.status.code(), Some(1), "{opt}: {}", err(&o));
        assert!(
            err(&o).contains(&format!(
                "resync: [server] {what} outside the module refused"
            )),
            "{opt}: {}",
            err(&o)
        );
    }
    assert!(!d.path().join("out").exists());
}

#[test]
fn a_file_the_daemon_cannot_create_is_reported_to_the_client_and_the_rest_arrives() {
    // The module's uid (nobody) may not write `locked/`: rsync's receiver
    // reports the failed mkstemp to the client, reads that file's data
    // through and goes on with the next ones (exit 23).
    if unsafe_uid() != 0 || nobody_uid().is_none() {
        return;
    }
    let ours = Daemon::resync(&pki(), "");
    let theirs = Daemon::rsync();
    for d in std::iter::once(&ours).chain(theirs.as_ref()) {
        let s = d.path().join("tree");
        for (name, len) in [("locked/big", 3_000_000usize), ("open/after", 70_000)] {
            fs::create_dir_all(s.join(name).parent().unwrap()).unwrap();
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 253) as u8).collect();
            fs::write(s.join(name), data).unwrap();
        }
    }
    let (o, t) = both(&ours, &theirs, &["-r", "tree/"], "wr/", &[]);
    let e = err(&o);
    assert_eq!(o.status.code(), Some(23), "{e}");
    assert_eq!(
        fs::read(ours.path().join("wr/open/after")).unwrap(),
        fs::read(ours.path().join("tree/open/after")).unwrap()
    );
    assert!(!ours.path().join("wr/locked/big").exists());
    let line = e
        .lines()
        .find(|l| l.contains("mkstemp"))
        .unwrap_or_default();
    assert!(
        line.starts_with("resync: [receiver] mkstemp \"")
            && line.contains("locked/.big.")
            && line.ends_with("failed: Permission denied (13)"),
        "{e}"
    );
    assert_eq!(
        e.lines().last(),
        Some(
            "resync error: some files/attrs were not transferred (see previous errors) \
             (code 23) [sender=0.1.0]"
        ),
        "{e}"
    );
    if let (Some(t), Some(td)) = (t, theirs.as_ref()) {
        assert_eq!(t.status.code(), Some(23), "{}", err(&t));
        assert!(err(&t).contains("mkstemp"), "{}", err(&t));
        assert!(td.path().join("wr/open/after").exists());
    }
}

/// Whether the daemon has closed `s` (end of stream or reset) within `t`.
fn closed_within(s: &mut TcpStream, t: Duration) -> bool {
    s.set_read_timeout(Some(t)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

/// A plain-TCP protocol connection to `d` after the handshake.
fn plain_session(
    d: &Daemon,
) -> (
    TcpStream,
    resync::remote::conn::FrameReader,
    resync::remote::conn::FrameWriter,
) {
    use resync::remote::conn::{FrameReader, FrameWriter};
    use resync::remote::handshake::{self, Side};
    let s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = FrameReader::new(s.try_clone().unwrap());
    let mut w = FrameWriter::new(s.try_clone().unwrap());
    handshake::handshake(Side::Client, &mut r, &mut w, &handshake::our_hello(0)).unwrap();
    (s, r, w)
}

#[test]
fn hanging_clients_never_block_a_good_one_and_are_dropped_after_timeout() {
    use resync::remote::proto::Msg;
    let d = Daemon::resync(&pki(), "timeout = 5\nplain tcp = yes");
    // One connects and says nothing; one stops in the middle of its Hello;
    // one completes the handshake and stops in the middle of a frame.
    let mut silent = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    let mut half = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    half.write_all(b"resync\0\n\x01\x50\0\0\0\x01\0").unwrap();
    let (mut mid, _r, mut w) = plain_session(&d);
    w.flush().unwrap();
    mid.write_all(&[0x05, 0x40, 0, 0, 0, 3]).unwrap();
    // Meanwhile a good client is served: listing, then a real pull.
    let o = d.client(&[&d.url("")]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), format!("{MOTD}{LISTING}"));
    let o = d.client(&["-r", "--no-motd", &d.url("pub/"), "got/"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(fs::read(d.path().join("got/f")).unwrap(), b"data\n");
    // The bad ones were still connected while it was served…
    for s in [&mut silent, &mut half, &mut mid] {
        assert!(!closed_within(s, Duration::from_millis(1)), "dropped early");
    }
    // …and are dropped once the timeout has passed.
    for s in [&mut silent, &mut half, &mut mid] {
        assert!(closed_within(s, Duration::from_secs(15)), "not dropped");
    }
    // A client that passes Ready (module `timeout` = the global one here)
    // and then stalls: the daemon's server side times out too.
    let (mut s, mut r, mut w) = plain_session(&d);
    let args = ["--server", "--sender", "-r", ".", "pub/"];
    w.send(&Msg::Start {
        args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
    })
    .unwrap();
    w.flush().unwrap();
    let mut ready = false;
    while let Ok(m) = r.recv() {
        if m == Msg::Ready {
            ready = true;
            break;
        }
    }
    assert!(ready, "no Ready");
    assert!(
        closed_within(&mut s, Duration::from_secs(15)),
        "not dropped"
    );
}

#[test]
fn garbage_before_and_after_the_handshake_is_refused_and_the_daemon_lives() {
    use resync::remote::proto::Msg;
    let mut d = Daemon::resync(&pki(), "timeout = 5\nplain tcp = yes");
    let error_of = |r: &mut resync::remote::conn::FrameReader| loop {
        match r.recv() {
            Ok(Msg::Error { code, message }) => return Some((code, message)),
            Ok(_) => {}
            Err(_) => return None,
        }
    };
    // Before: bytes that are neither TLS nor the magic.
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.write_all(&[0u8; 64]).unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(10)));
    // After the handshake: an unknown frame type instead of Start.
    let (mut s, mut r, mut w) = plain_session(&d);
    w.flush().unwrap();
    s.write_all(&[0x7f, 0, 0, 0, 0]).unwrap();
    let (code, msg) = error_of(&mut r).expect("an Error");
    assert_eq!(code, 12);
    assert!(msg.contains("unknown message type 0x7f"), "{msg}");
    // A Start that is not one: no `.`, then a Start of 2^40 arguments.
    let (_s, mut r, mut w) = plain_session(&d);
    w.send(&Msg::Start {
        args: vec![b"--server".to_vec()],
    })
    .unwrap();
    w.flush().unwrap();
    let (code, msg) = error_of(&mut r).expect("an Error");
    assert_eq!(code, 12);
    assert!(msg.contains("separator"), "{msg}");
    let (mut s, mut r, mut w) = plain_session(&d);
    w.flush().unwrap();
    s.write_all(&[0x05, 6, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20])
        .unwrap();
    let (code, msg) = error_of(&mut r).expect("an Error");
    assert_eq!(code, 12);
    assert!(msg.contains("exceeds limit 1024"), "{msg}");
    // After Ready: garbage where the file list should be (a push).
    let (_s, mut r, mut w) = plain_session(&d);
    let args = ["--server", "-r", ".", "refw/new"];
    w.send(&Msg::Start {
        args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
    })
    .unwrap();
    w.send(&Msg::AuthResponse {
        user: "x".into(),
        response: [0; 32],
    })
    .unwrap();
    w.flush().unwrap();
    let (code, msg) = error_of(&mut r).expect("an Error");
    assert_eq!(code, 12);
    assert!(msg.contains("unexpected message 0x31"), "{msg}");
    assert!(!d.path().join("m/new").exists());
    // Still serving.
    assert!(d.child.try_wait().unwrap().is_none(), "daemon died");
    let o = d.client(&[&d.url("")]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(d.log().contains("protocol error"), "{}", d.log());
}

/// `-z` through the daemon compresses both ways (the client used to drop
/// it): log text shrinks to a fraction, random bytes go as raw frames (no
/// bigger than they are), the files arrive intact; `--no-compress` sends
/// everything as it is; the default (adaptive) arrives intact too.
#[test]
fn compression_through_the_daemon_shrinks_text_both_ways() {
    let d = Daemon::resync(&pki(), "");
    let src = d.path().join("zsrc");
    fs::create_dir_all(&src).unwrap();
    let text: Vec<u8> = (0..60_000u32)
        .flat_map(|i| {
            format!(
                "10.0.{}.{} - - \"GET /item/{} HTTP/1.1\" 200 {}\n",
                i % 7,
                i % 13,
                i % 977,
                i % 4096
            )
            .into_bytes()
        })
        .collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::write(src.join("access.log"), &text).unwrap();
    fs::write(src.join("noise.bin"), &noise).unwrap();
    let total = (text.len() + noise.len()) as u64;
    let stat = |o: &Output, key: &str| {
        assert_eq!(o.status.code(), Some(0), "{}", err(o));
        common::stat_figure(&out(o), key)
    };
    let same = |dir: &Path| {
        assert!(fs::read(dir.join("access.log")).unwrap() == text);
        assert!(fs::read(dir.join("noise.bin")).unwrap() == noise);
    };
    for (i, flag) in ["-z", "--no-compress", "-a"].into_iter().enumerate() {
        let to = format!("refw/z{i}/");
        let push = d.client(&["-a", flag, "--stats", "zsrc/", &d.url(&to)]);
        let sent = stat(&push, "Total bytes sent:");
        same(&d.path().join("m").join(format!("z{i}")));
        let back = format!("back{i}");
        let pull = d.client(&["-a", flag, "--stats", &d.url(&to), &back]);
        let got = stat(&pull, "Total bytes received:");
        same(&d.path().join(&back));
        match flag {
            "-z" => {
                let most = noise.len() as u64 + text.len() as u64 / 8 + (64 << 10);
                assert!(sent < most, "-z push sent {sent} of {total}");
                assert!(got < most, "-z pull received {got} of {total}");
            }
            "--no-compress" => assert!(sent > total && got > total, "{sent} {got} of {total}"),
            _ => {}
        }
    }
}

/// A daemon's operand for a module path.
type Url<'a> = &'a dyn Fn(&str) -> String;

/// Run the client commands `runs(url)` builds (`url`: a module path as
/// each daemon's operand) with resync's client against our daemon and
/// rsync's against rsync's; each must exit 0, and the stdout of every run
/// and the trees at `compared` (paths in each daemon's directory) must be
/// the same on both sides.
fn same_on_both(
    ours: &Daemon,
    theirs: &Daemon,
    runs: &dyn Fn(Url) -> Vec<Vec<String>>,
    compared: &[&str],
) {
    let ours_url = |rest: &str| ours.url(rest);
    let theirs_url = |rest: &str| format!("rsync://127.0.0.1:{}/{rest}", theirs.port);
    let mut outs: Vec<Vec<String>> = Vec::new();
    for (is_ours, url) in [
        (true, &ours_url as &dyn Fn(&str) -> String),
        (false, &theirs_url),
    ] {
        let mut side = Vec::new();
        for args in runs(url) {
            let o = if is_ours {
                ours.client(&args.iter().map(String::as_str).collect::<Vec<_>>())
            } else {
                theirs.rsync_client(&args, &[])
            };
            assert_eq!(o.status.code(), Some(0), "{args:?}: {}", err(&o));
            side.push(out(&o));
        }
        outs.push(side);
    }
    assert_eq!(outs[0], outs[1]);
    for sub in compared {
        let a = common::remote::tree(&ours.path().join(sub));
        let b = common::remote::tree(&theirs.path().join(sub));
        assert_eq!(a, b, "{sub}");
    }
}

/// `--files-from` lists on the receiving side reach the daemon's sender
/// (a pull's local list) or come from it (a push's `:PATH`, read in the
/// module), as with rsync's daemon: stdout, exit code and tree compared.
#[test]
fn files_from_lists_cross_the_daemon_connection_like_rsync() {
    let ours = Daemon::resync(&pki(), "");
    let Some(theirs) = Daemon::rsync() else {
        return;
    };
    for d in [ours.path(), theirs.path()] {
        fs::write(d.join("list"), b"f\nsub\n").unwrap();
        fs::write(d.join("m/list"), b"a\n").unwrap();
    }
    let runs = |url: Url| {
        vec![
            vec![
                "-ai".into(),
                "--files-from=list".into(),
                url("pub/"),
                "pulled/".into(),
            ],
            vec![
                "-ai".into(),
                "--files-from=:list".into(),
                "src/".into(),
                url("refw/pushed/"),
            ],
        ]
    };
    same_on_both(&ours, &theirs, &runs, &["pulled", "m/pushed"]);
    assert_eq!(
        fs::read(ours.path().join("pulled/f")).unwrap(),
        b"data\n".to_vec()
    );
    assert!(ours.path().join("m/pushed/a").is_file());
}

/// `-R` through the daemon: a pull of `MODULE/sub/deeper` and of a file
/// keeps their paths in the module, a push of `src/./x/y` the path from the
/// marker, creating the implied directories; stdout, exit code and tree as
/// with rsync's daemon. (`MODULE/./sub`: see the CHANGELOG's known issue.)
#[test]
fn relative_paths_through_the_daemon_match_rsync() {
    let ours = Daemon::resync(&pki(), "");
    let Some(theirs) = Daemon::rsync() else {
        return;
    };
    for d in [ours.path(), theirs.path()] {
        fs::create_dir_all(d.join("m/sub/deeper")).unwrap();
        fs::write(d.join("m/sub/deeper/g"), b"g\n").unwrap();
        fs::create_dir_all(d.join("src/x/y")).unwrap();
        fs::write(d.join("src/x/y/z"), b"z\n").unwrap();
    }
    let runs = |url: Url| {
        vec![
            vec![
                "-aiR".into(),
                url("pub/sub/deeper"),
                url("pub/f"),
                "pulled/".into(),
            ],
            vec!["-aiR".into(), "src/./x/y".into(), url("refw/pushed/")],
        ]
    };
    same_on_both(&ours, &theirs, &runs, &["pulled", "m/pushed"]);
    assert!(ours.path().join("pulled/sub/deeper/g").is_file());
    assert!(ours.path().join("pulled/f").is_file());
    assert!(ours.path().join("m/pushed/x/y/z").is_file());
}
