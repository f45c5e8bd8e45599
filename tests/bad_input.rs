//! Bad input that the differential tests cannot set up: a full disk and a file
//! that vanishes mid-run. Each ends with rsync's exit code and message, and
//! nothing in the destination lost or half-written.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn resync() -> Command {
    Command::new(env!("CARGO_BIN_EXE_resync"))
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Every name under `dir` (relative, sorted).
fn names(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A small tmpfs mounted for one test, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> Option<SmallFs> {
        if !is_root() {
            eprintln!("skipping: mounting a small tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mount tmpfs failed although we are root");
        Some(SmallFs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn full_disk_exits_11_and_keeps_the_old_file_whole() {
    let Some(fs_small) = SmallFs::mount("2m") else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("a.txt"), b"small\n").unwrap();
    // Bigger than the whole destination filesystem.
    fs::write(src.path().join("big.bin"), vec![7u8; 3 << 20]).unwrap();
    let dst = fs_small.path().join("dst");
    fs::create_dir(&dst).unwrap();
    // An older version that must survive the failed update untouched.
    fs::write(dst.join("big.bin"), b"old version\n").unwrap();
    let out = resync()
        .arg("-a")
        .arg(format!("{}/", src.path().display()))
        .arg(&dst)
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(11), "stderr: {err}");
    assert!(
        err.contains("No space left on device (28)"),
        "stderr: {err}"
    );
    assert!(
        err.contains("resync error: error in file IO (code 11)"),
        "stderr: {err}"
    );
    assert_eq!(fs::read(dst.join("big.bin")).unwrap(), b"old version\n");
    let leftovers: Vec<String> = names(&dst)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temp files left behind: {leftovers:?}"
    );
}

#[test]
fn full_disk_leaves_no_partial_new_file() {
    let Some(fs_small) = SmallFs::mount("1m") else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("big.bin"), vec![1u8; 2 << 20]).unwrap();
    let dst = fs_small.path().join("dst");
    let out = resync()
        .arg("-a")
        .arg(format!("{}/", src.path().display()))
        .arg(&dst)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(11), "{:?}", text(&out));
    // The directory was created; the file was not, not even partly.
    assert_eq!(names(&dst), Vec::<String>::new());
}

#[test]
fn missing_source_is_reported_and_the_rest_is_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"data").unwrap();
    let out = resync()
        .current_dir(tmp.path())
        .args(["-a", "nope", "src", "dst/"])
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(23));
    let missing = tmp.path().join("nope");
    assert_eq!(
        err,
        format!(
            "resync: [sender] link_stat \"{}\" failed: No such file or directory (2)\n\
             resync error: some files/attrs were not transferred (see previous errors) (code 23) [sender=0.1.0]\n",
            missing.display()
        )
    );
    assert_eq!(fs::read(tmp.path().join("dst/src/f")).unwrap(), b"data");
}

/// A source file deleted after the scan listed it: rsync's "file has
/// vanished" and exit 24, with every other file copied.
#[test]
fn vanished_file_exits_24() {
    let tmp = tempfile::tempdir_in("/dev/shm").unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    // Copied first (list order) and big enough to take a while.
    fs::write(src.join("a.big"), vec![3u8; 256 << 20]).unwrap();
    fs::write(src.join("z.small"), b"gone soon").unwrap();
    fs::write(src.join("zz.kept"), b"kept").unwrap();
    let dst: PathBuf = tmp.path().join("dst");
    // --progress applies items one at a time, in list order.
    let child = resync()
        .arg("-a")
        .arg("--progress")
        .arg(format!("{}/", src.display()))
        .arg(&dst)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the big file's temp file, then pull the small one away.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let busy = fs::read_dir(&dst).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".a.big."))
        });
        if busy {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "copy never started");
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    fs::remove_file(src.join("z.small")).unwrap();
    let out = child.wait_with_output().unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(24), "stderr: {err}");
    assert!(
        err.contains(&format!(
            "resync: [sender] file has vanished: \"{}\"",
            src.join("z.small").display()
        )),
        "stderr: {err}"
    );
    assert!(err.contains(
        "resync warning: some files vanished before they could be transferred (code 24)"
    ));
    assert_eq!(fs::read(dst.join("zz.kept")).unwrap(), b"kept");
    assert_eq!(fs::metadata(dst.join("a.big")).unwrap().size(), 256 << 20);
    assert!(!dst.join("z.small").exists());
}

/// Run `prog` as uid/gid 65534 (nobody) in `cwd`.
fn as_nobody(prog: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(prog)
        .args(args)
        .current_dir(cwd)
        .env("LC_ALL", "C")
        .output()
        .unwrap()
}

fn chown_r(p: &Path, id: u32) {
    let ok = Command::new("chown")
        .args(["-R", &format!("{id}:{id}")])
        .arg(p)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn backup_dir_that_cannot_be_created_exits_11_and_keeps_the_old_file() {
    if !is_root() {
        eprintln!("skipping: switching to another user needs root");
        return;
    }
    let rsync_ok = Command::new("rsync").arg("--version").output().is_ok();
    let mut results = Vec::new();
    let progs: Vec<PathBuf> = if rsync_ok {
        vec![env!("CARGO_BIN_EXE_resync").into(), "rsync".into()]
    } else {
        vec![env!("CARGO_BIN_EXE_resync").into()]
    };
    for prog in &progs {
        let top = tempfile::tempdir().unwrap();
        let w = top.path();
        fs::set_permissions(w, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        fs::create_dir_all(w.join("src")).unwrap();
        fs::create_dir_all(w.join("dst")).unwrap();
        fs::write(w.join("src/a.txt"), b"the new version\n").unwrap();
        fs::write(w.join("dst/a.txt"), b"old\n").unwrap();
        chown_r(&w.join("src"), 65534);
        chown_r(&w.join("dst"), 65534);
        // Owned by root: nobody cannot make the backup directory in it.
        fs::create_dir(w.join("ro")).unwrap();
        let out = as_nobody(prog, w, &["-a", "--backup-dir=../ro/bak", "src/", "dst/"]);
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(11), "{}: {err}", prog.display());
        // The destination keeps the old version, whole; nothing half-made.
        assert_eq!(fs::read(w.join("dst/a.txt")).unwrap(), b"old\n");
        assert_eq!(names(&w.join("dst")), vec!["a.txt".to_string()]);
        assert!(!w.join("ro/bak").exists());
        let err = err
            .replace("resync error:", "rsync error:")
            .lines()
            .map(|l| {
                l.split(" at ")
                    .next()
                    .unwrap()
                    .split(" [")
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect::<Vec<_>>();
        results.push(err);
    }
    // rsync's receiver says no more than its exit line.
    assert_eq!(
        results[0],
        vec!["rsync error: error in file IO (code 11)".to_string()]
    );
    if results.len() == 2 {
        assert_eq!(results[0], results[1]);
    }
}

#[test]
fn missing_link_dest_warns_and_copies_everything() {
    let top = tempfile::tempdir().unwrap();
    let w = top.path();
    fs::create_dir_all(w.join("src/d")).unwrap();
    fs::write(w.join("src/d/f"), b"data\n").unwrap();
    let out = resync()
        .current_dir(w)
        .args(["-a", "--link-dest=../nosuch", "src/", "dst/"])
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // rsync names it as it resolves it: relative to the destination.
    let dst = fs::canonicalize(w.join("dst")).unwrap();
    assert_eq!(
        err,
        format!(
            "--link-dest arg does not exist: {}/../nosuch\n",
            dst.display()
        )
    );
    assert_eq!(fs::read(w.join("dst/d/f")).unwrap(), b"data\n");
    assert_eq!(fs::metadata(w.join("dst/d/f")).unwrap().nlink(), 1);
}

/// A destination with files only `--delete` would remove, and a snapshot of
/// it (names, sizes, mtimes) to prove a failed run touched nothing.
fn delete_fixture(w: &Path) -> Vec<(String, u64, i64, i64)> {
    fs::create_dir_all(w.join("src/d")).unwrap();
    fs::write(w.join("src/a.txt"), "new a").unwrap();
    fs::write(w.join("src/d/b.txt"), "new b").unwrap();
    fs::create_dir_all(w.join("dst/d/old")).unwrap();
    fs::write(w.join("dst/a.txt"), "old a, longer").unwrap();
    fs::write(w.join("dst/extra"), "extra").unwrap();
    fs::write(w.join("dst/d/old/x"), "x").unwrap();
    snapshot(&w.join("dst"))
}

fn snapshot(dir: &Path) -> Vec<(String, u64, i64, i64)> {
    names(dir)
        .into_iter()
        .map(|n| {
            let m = fs::symlink_metadata(dir.join(&n)).unwrap();
            (n, m.size(), m.mtime(), m.mtime_nsec())
        })
        .collect()
}

#[test]
fn malformed_rule_exits_1_before_anything_is_deleted() {
    let t = tempfile::tempdir().unwrap();
    let before = delete_fixture(t.path());
    for (rule, msg) in [
        ("x foo", "Unknown filter rule: x foo\n"),
        (
            "-z foo",
            "invalid modifier 'z' at position 1 in filter rule: -z foo\n",
        ),
        ("! x", "'!' rule has trailing characters: ! x\n"),
    ] {
        let out = resync()
            .args(["-a", "--delete", "--filter", rule, "src/", "dst/"])
            .current_dir(t.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{rule}");
        let (stdout, stderr) = text(&out);
        assert_eq!(stdout, "");
        assert!(stderr.starts_with(msg), "{stderr}");
        assert!(
            stderr.contains("syntax or usage error (code 1)"),
            "{stderr}"
        );
        assert_eq!(snapshot(&t.path().join("dst")), before, "{rule}");
    }
}

#[test]
fn unreadable_exclude_file_exits_11_before_anything_is_deleted() {
    let t = tempfile::tempdir().unwrap();
    let before = delete_fixture(t.path());
    let out = resync()
        .args([
            "-a",
            "--delete",
            "--exclude-from=no-such-rules",
            "src/",
            "dst/",
        ])
        .current_dir(t.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(11));
    let (_, stderr) = text(&out);
    assert!(stderr.starts_with(
        "resync: [client] failed to open exclude file no-such-rules: No such file or directory (2)\n"
    ), "{stderr}");
    assert_eq!(snapshot(&t.path().join("dst")), before);
}

#[test]
fn missing_files_from_entry_exits_23_and_the_rest_is_copied() {
    let t = tempfile::tempdir().unwrap();
    delete_fixture(t.path());
    fs::write(t.path().join("list"), "a.txt\nnope\nd/b.txt\n").unwrap();
    let out = resync()
        .args(["-a", "--files-from=list", "src", "dst/"])
        .current_dir(t.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(23));
    let (_, stderr) = text(&out);
    let src = fs::canonicalize(t.path().join("src")).unwrap();
    assert!(
        stderr.contains(&format!(
            "resync: [sender] link_stat \"{}/nope\" failed: No such file or directory (2)\n",
            src.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        fs::read_to_string(t.path().join("dst/a.txt")).unwrap(),
        "new a"
    );
    assert_eq!(
        fs::read_to_string(t.path().join("dst/d/b.txt")).unwrap(),
        "new b"
    );
    // Without --delete nothing else goes.
    assert!(t.path().join("dst/extra").exists());
}
