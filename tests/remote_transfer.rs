//! Push and pull over a real OpenSSH server (`common::sshd`), each run beside
//! `rsync -e ssh` on the same tree with the same flags: trees (contents,
//! modes, ns mtimes, symlinks), stdout (byte figures blanked) and exit codes
//! must match. Also the delta path, a missing source and interrupted runs.
//! Needs root and OpenSSH (skipped with a note otherwise) and rsync.

mod common;

use common::remote::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

#[test]
fn push_matches_rsync() {
    let Some(env) = Env::new() else { return };
    env.both(false, &["-a"], &nothing);
    env.both(false, &["-av"], &nothing);
    env.both(false, &["-ai"], &nothing);
    env.both(false, &["-ai", "--delete"], &stale);
    env.both(false, &["-av", "--delete", "--exclude=*.log"], &stale);
    env.both(
        false,
        &["-ai", "--exclude=deep/", "--exclude", "big"],
        &nothing,
    );
    env.both(false, &["-ain", "--delete"], &stale);
    // (Not with the file where the source has a directory: rsync 3.5 gives
    // that file the directory's mtime, locally too; resync leaves it.)
    env.both(false, &["-ai", "--ignore-existing"], &|d: &Path| {
        stale(d);
        fs::remove_file(d.join("emptydir")).unwrap();
    });
    env.both(false, &["-ai", "--existing"], &stale);
    env.both(false, &["-rlpt", "-v", "--stats"], &nothing);
    env.both(false, &["-azi", "--delete"], &stale);
    env.both(false, &["-a", "--compress-level=19", "-v"], &nothing);
    // A re-run is a no-op: nothing printed with -i.
    env.both(false, &["-ai", "--delete"], &stale);
    let o = env.rerun(false, &["-ai", "--delete"]);
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn pull_matches_rsync() {
    let Some(env) = Env::new() else { return };
    env.both(true, &["-a"], &nothing);
    env.both(true, &["-av"], &nothing);
    env.both(true, &["-ai"], &nothing);
    env.both(true, &["-ai", "--delete"], &stale);
    env.both(true, &["-av", "--delete-after", "--exclude=*.log"], &stale);
    env.both(true, &["-ai", "-f", "- deep/"], &nothing);
    env.both(true, &["-ain"], &stale);
    env.both(true, &["-ai", "-u"], &stale);
    env.both(true, &["-a", "--stats"], &nothing);
    env.both(true, &["-azv", "--delete"], &stale);
    env.both(true, &["-ai", "--delete"], &stale);
    let o = env.rerun(true, &["-ai", "--delete"]);
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// The figure after `key` in `--stats` output.
fn figure(o: &Output, key: &str) -> u64 {
    common::stat_figure(&String::from_utf8_lossy(&o.stdout), key)
}

#[test]
fn a_changed_big_file_goes_as_a_delta_both_ways() {
    let Some(env) = Env::new() else { return };
    // The destination has the old version; the source changed 100 bytes in
    // the middle and grew at the end.
    let old = fs::read(env.w().join("src/big")).unwrap();
    let mut new = old.clone();
    new[5_000_000..5_000_100].fill(0xAB);
    new.extend_from_slice(b"tail");
    let prep = |d: &Path| {
        make_tree(d);
        fs::write(d.join("big"), &old).unwrap();
    };
    fs::write(env.w().join("src/big"), &new).unwrap();
    for pull in [false, true] {
        let o = env.both_as(pull, &["-a", "--stats"], &prep, true);
        let literal = figure(&o, "Literal data:");
        let matched = figure(&o, "Matched data:");
        assert!(literal < 256 << 10, "pull={pull}: literal {literal}");
        assert_eq!(literal + matched, new.len() as u64, "pull={pull}");
        let got = fs::read(env.w().join("s/dst/big")).unwrap();
        assert!(got == new, "pull={pull}: content");
        // -W sends the whole file.
        let o = env.both(pull, &["-a", "-W", "--stats"], &prep);
        assert_eq!(figure(&o, "Literal data:"), new.len() as u64);
        assert_eq!(figure(&o, "Matched data:"), 0);
    }
}

#[test]
fn a_missing_source_is_exit_23_like_rsync() {
    let Some(env) = Env::new() else { return };
    let rsh = env.rsh();
    let missing = format!("{USER}:{}/nonexist", env.w().display());
    let r = run("rsync", env.w(), &["-a", "-e", &rsh, &missing, "r"]);
    let s = run(BIN, env.w(), &["-a", "-e", &rsh, &missing, "s"]);
    assert_eq!(r.status.code(), Some(23));
    assert_eq!(s.status.code(), Some(23), "{}", stderr(&s));
    let e = stderr(&s);
    assert!(
        e.contains(&format!(
            "resync: [sender] link_stat \"{}/nonexist\" failed: No such file or directory (2)\n",
            env.w().display()
        )),
        "{e}"
    );
    assert!(
        e.ends_with(
            "resync error: some files/attrs were not transferred (see previous errors) \
             (code 23) [Receiver=0.1.0]\n"
        ),
        "{e}"
    );
    // A push of a missing local source.
    let dst = format!("{USER}:{}/p/", env.w().display());
    let s = run(BIN, env.w(), &["-a", "-e", &rsh, "nonexist", &dst]);
    assert_eq!(s.status.code(), Some(23), "{}", stderr(&s));
    assert!(
        stderr(&s).ends_with("(code 23) [sender=0.1.0]\n"),
        "{}",
        stderr(&s)
    );
}

#[test]
fn an_interrupted_transfer_leaves_old_or_new_files_and_a_rerun_completes() {
    let Some(env) = Env::new() else { return };
    let rsh = env.rsh();
    let src = env.w().join("src");
    // Pull: the server is killed once 3 MiB of its output (inside the
    // 10 MiB file) went out (its stdin kept: a background job's would be
    // /dev/null).
    let cut = env.w().join("cut.sh");
    fs::write(
        &cut,
        format!(
            "#!/bin/sh\nexec 3<&0\nd=$(mktemp -d)\nmkfifo $d/f\n{BIN} \"$@\" <&3 > $d/f & pid=$!\n\
             stdbuf -o0 head -c 3000000 < $d/f\nkill -9 $pid\nrm -r $d\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&cut, fs::Permissions::from_mode(0o755)).unwrap();
    let dst = env.w().join("pulled");
    fs::create_dir(&dst).unwrap();
    fs::write(dst.join("big"), b"old big").unwrap();
    let from = format!("{USER}:{}/", src.display());
    let cut_s = cut.display().to_string();
    let o = Command::new(BIN)
        .args(["-a", "-e", &rsh, "--rsync-path", &cut_s, &from, "pulled"])
        .current_dir(env.w())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(12), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("connection unexpectedly closed"),
        "{}",
        stderr(&o)
    );
    // The big file is still the old one, no temp file is left.
    assert_eq!(fs::read(dst.join("big")).unwrap(), b"old big");
    assert!(temp_files(&dst).is_empty(), "{:?}", temp_files(&dst));
    let o = run(BIN, env.w(), &["-a", "-e", &rsh, &from, "pulled"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(tree(&dst), tree(&src));

    // Push: the server's input is cut after 2 MiB; it dies mid-file.
    let cut_in = env.w().join("cut_in.sh");
    fs::write(
        &cut_in,
        format!("#!/bin/sh\nstdbuf -o0 head -c 2000000 | {BIN} \"$@\"\n"),
    )
    .unwrap();
    fs::set_permissions(&cut_in, fs::Permissions::from_mode(0o755)).unwrap();
    let rdst = env.w().join("pushed");
    fs::create_dir(&rdst).unwrap();
    fs::write(rdst.join("big"), b"old big").unwrap();
    let to = format!("{USER}:{}/", rdst.display());
    let cut_in_s = cut_in.display().to_string();
    let o = Command::new(BIN)
        .args(["-a", "-e", &rsh, "--rsync-path", &cut_in_s, "src/", &to])
        .current_dir(env.w())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(12), "{}", stderr(&o));
    assert_eq!(fs::read(rdst.join("big")).unwrap(), b"old big");
    assert!(temp_files(&rdst).is_empty(), "{:?}", temp_files(&rdst));
    let o = run(BIN, env.w(), &["-a", "-e", &rsh, "src/", &to]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(tree(&rdst), tree(&src));
}

#[test]
fn a_big_file_with_a_prepend_and_scattered_edits_is_rebuilt_exactly_both_ways() {
    // 24 MiB: the receiver copies the matched ranges in-kernel and hashes
    // the finished file through a mapping (the path for outputs of 16 MiB
    // and up); every byte must still be the sender's.
    let Some(env) = Env::new() else { return };
    let old = common::bytes(24 << 20, 7);
    let mut new = vec![0x5Au8; 4096];
    new.extend_from_slice(&old);
    for at in [1 << 20, 9 << 20, 17 << 20, 23 << 20] {
        new[at..at + 3000].fill(0xC3);
    }
    let prep = |d: &Path| {
        make_tree(d);
        fs::write(d.join("big"), &old).unwrap();
    };
    fs::write(env.w().join("src/big"), &new).unwrap();
    for pull in [false, true] {
        let o = env.both_as(pull, &["-a", "--stats"], &prep, true);
        let literal = figure(&o, "Literal data:");
        let matched = figure(&o, "Matched data:");
        assert!(literal < 2 << 20, "pull={pull}: literal {literal}");
        assert!(matched > 20 << 20, "pull={pull}: matched {matched}");
        let got = fs::read(env.w().join("s/dst/big")).unwrap();
        assert!(got == new, "pull={pull}: content differs");
    }
}
