//! `-R`/`--relative` (with `/./` markers and `--no-implied-dirs`) and
//! `--files-from`/`--from0` over push and pull through a real OpenSSH
//! server, each run beside `rsync -e ssh` with the same flags and operands
//! (`common::remote`): trees, stdout (byte figures blanked) and exit codes
//! must match. Needs root, OpenSSH and rsync (skipped with a note otherwise).

mod common;

use common::remote::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

/// `-R` operands: `SRC/./NAME` for each name, remote (`USER:`) on a pull.
fn rel_ops(env: &Env, pull: bool, names: &[&str]) -> impl Fn(&Path) -> Vec<String> {
    let src = env.w().join("src").display().to_string();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    move |base: &Path| {
        let mut v: Vec<String> = names
            .iter()
            .map(|n| {
                if pull {
                    format!("{USER}:{src}/./{n}")
                } else {
                    format!("{src}/./{n}")
                }
            })
            .collect();
        v.push(if pull {
            "dst/".to_string()
        } else {
            format!("{USER}:{}/dst/", base.display())
        });
        v
    }
}

#[test]
fn relative_with_markers_matches_rsync_both_ways() {
    let Some(env) = Env::new() else {
        return;
    };
    for pull in [false, true] {
        let what = format!("pull={pull}");
        let ops = rel_ops(
            &env,
            pull,
            &["sub/deep", "a.txt", "sub/dangling", "emptydir"],
        );
        for flags in [
            &["-aR"][..],
            &["-aiR"],
            &["-avR"],
            &["-aiR", "--no-implied-dirs"],
            &["-rtR", "--no-implied-dirs"],
            &["-aiRn"],
        ] {
            env.both_with(&what, flags, &ops, &nothing, false);
        }
        // Into a destination that already has some of it, with strays that
        // only the listed directories' --delete reaches.
        let ops = rel_ops(&env, pull, &["sub/deep", "sub/b.log"]);
        let part = |d: &Path| {
            fs::create_dir_all(d.join("sub/deep")).unwrap();
            fs::write(d.join("sub/deep/stray"), b"x").unwrap();
            fs::write(d.join("sub/keep"), b"k").unwrap();
            for p in ["sub/deep/stray", "sub/keep", "sub/deep", "sub"] {
                set_mtime(&d.join(p), (1_400_000_000, 0));
            }
        };
        env.both_with(&what, &["-aiR", "--delete"], &ops, &part, false);
        env.both_with(&what, &["-aiR"], &ops, &part, false);
        // A whole directory operand below the marker, and a marker at the root.
        let ops = rel_ops(&env, pull, &["sub"]);
        env.both_with(&what, &["-aiR"], &ops, &nothing, false);
        let ops = rel_ops(&env, pull, &["", "a.txt"]);
        env.both_with(&what, &["-aiR"], &ops, &nothing, false);
    }
}

#[test]
fn no_implied_dirs_keeps_a_destination_symlink_both_ways() {
    let Some(env) = Env::new() else {
        return;
    };
    // `sub` is a symlink to a directory at the destination: rsync keeps it
    // and writes through it with --no-implied-dirs, and replaces it without.
    let linked = |d: &Path| {
        fs::create_dir_all(d.join("real/deep")).unwrap();
        symlink("real", d.join("sub")).unwrap();
        set_mtime(&d.join("real/deep"), (1_400_000_000, 0));
        set_mtime(&d.join("real"), (1_400_000_000, 0));
    };
    for pull in [false, true] {
        let what = format!("pull={pull}");
        let ops = rel_ops(&env, pull, &["sub/deep/c", "sub/b.log"]);
        env.both_with(&what, &["-aiR", "--no-implied-dirs"], &ops, &linked, false);
        env.both_with(&what, &["-aiR"], &ops, &linked, false);
        env.both_with(&what, &["-aiR", "--no-implied-dirs"], &ops, &nothing, false);
    }
}

#[test]
fn relative_without_marker_keeps_the_whole_path_both_ways() {
    let Some(env) = Env::new() else {
        return;
    };
    let src = env.w().join("src").display().to_string();
    for pull in [false, true] {
        let src = src.clone();
        let ops = move |base: &Path| {
            let s = format!("{src}/sub/deep");
            if pull {
                vec![format!("{USER}:{s}"), "dst/".into()]
            } else {
                vec![s, format!("{USER}:{}/dst/", base.display())]
            }
        };
        // The work directory's own parents are "now" in both trees (the runs
        // make r/ and s/ in it); modes, names and files must agree.
        env.both_with(&format!("pull={pull}"), &["-rlpR"], &ops, &nothing, false);
    }
}

#[test]
fn files_from_matches_rsync_both_ways() {
    let Some(env) = Env::new() else {
        return;
    };
    let list = env.w().join("list");
    fs::write(
        &list,
        b"sub/deep/c\n# comment\na.txt\nemptydir\nsub/./b.log\n",
    )
    .unwrap();
    let list0 = env.w().join("list0");
    fs::write(&list0, b"sub/deep\0link\0").unwrap();
    let (l, l0) = (list.display().to_string(), list0.display().to_string());
    for (pull, ff, extra) in [
        (false, format!("--files-from={l}"), None),
        (false, format!("--files-from={l0}"), Some("--from0")),
        (true, format!("--files-from=:{l}"), None),
        (true, format!("--files-from={USER}:{l0}"), Some("--from0")),
        // Lists on the receiving side travel to the sender.
        (true, format!("--files-from={l}"), None),
        (true, format!("--files-from={l0}"), Some("--from0")),
        (false, format!("--files-from=:{l}"), None),
        (false, format!("--files-from={USER}:{l0}"), Some("--from0")),
    ] {
        for base in [&["-ai"][..], &["-air"], &["-av"]] {
            let mut flags: Vec<&str> = base.to_vec();
            flags.push(&ff);
            flags.extend(extra);
            env.check(pull, &flags, &nothing, &Check::default());
        }
    }
}

#[test]
fn a_pulls_list_from_stdin_reaches_the_remote_sender() {
    let Some(env) = Env::new() else {
        return;
    };
    let rsh = env.rsh();
    let src = format!("{USER}:{}/", env.w().join("src").display());
    let mut outs = Vec::new();
    for (prog, dst) in [("rsync", "dst-r/"), (BIN, "dst-s/")] {
        let mut c = std::process::Command::new(prog);
        c.current_dir(env.w())
            .args(["-e", &rsh, "-ai", "--files-from=-", &src, dst])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if prog == BIN {
            c.args(["--rsync-path", BIN]);
        }
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"sub/deep/c\na.txt\n")
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{prog}: {}", stderr(&o));
        outs.push(String::from_utf8_lossy(&o.stdout).replace(&dst[..5], "DST"));
    }
    assert_eq!(outs[0], outs[1]);
    assert_eq!(tree(&env.w().join("dst-s")), tree(&env.w().join("dst-r")));
    assert_eq!(
        fs::read(env.w().join("dst-s/sub/deep/c")).unwrap(),
        fs::read(env.w().join("src/sub/deep/c")).unwrap()
    );
    assert!(!env.w().join("dst-s/big").exists());
}

#[test]
fn unreadable_lists_end_the_run_before_connecting() {
    let Some(env) = Env::new() else {
        return;
    };
    let src = format!("{}/", env.w().join("src").display());
    // An unreadable list on a push: rsync's message and exit 1, before connecting.
    let o = run(
        BIN,
        env.w(),
        &["-e", "/bin/false", "-a", "--files-from=nope", &src, "h:/x/"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "resync: failed to open files-from file nope: No such file or directory\n\
         resync error: syntax or usage error (code 1) [client=0.1.0]\n"
    );
    // The same on a pull, whose list the remote sender would use.
    let o = run(
        BIN,
        env.w(),
        &[
            "-e",
            "/bin/false",
            "-a",
            "--files-from=nope",
            "h:/x/",
            "dst/",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "resync: failed to open files-from file nope: No such file or directory\n\
         resync error: syntax or usage error (code 1) [client=0.1.0]\n"
    );
    assert!(!env.w().join("dst").exists());
}

#[test]
fn a_missing_remote_list_on_a_pull_ends_before_the_protocol_like_rsync() {
    let Some(env) = Env::new() else {
        return;
    };
    let rsh = env.rsh();
    let src = format!("{USER}:{}/", env.w().join("src").display());
    let ff = "--files-from=:/nonexistent-list";
    // rsync's server opens the list before the protocol starts and exits 1;
    // the client sees the stream close (exit 12). Nothing is written.
    let theirs = run(
        "rsync",
        env.w(),
        &["-e", &rsh, "-a", ff, &src, "dst-rsync/"],
    );
    assert_eq!(theirs.status.code(), Some(12), "{}", stderr(&theirs));
    assert!(
        stderr(&theirs).contains("failed to open files-from file /nonexistent-list"),
        "{}",
        stderr(&theirs)
    );
    let o = run(BIN, env.w(), &["-e", &rsh, "-a", ff, &src, "dst/"]);
    assert_eq!(o.status.code(), Some(12), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "resync: failed to open files-from file /nonexistent-list: No such file or directory\n\
         resync error: syntax or usage error (code 1) [server=0.1.0]\n\
         resync: connection unexpectedly closed (0 bytes received so far) [Receiver]\n\
         resync error: error in rsync protocol data stream (code 12) [Receiver=0.1.0]\n"
    );
    assert!(!env.w().join("dst").exists());
    assert!(!env.w().join("dst-rsync").exists());
}

#[test]
fn relative_missing_args_are_deleted_by_their_whole_path_like_rsync() {
    let Some(env) = Env::new() else {
        return;
    };
    let rsh = env.rsh();
    let w = env.w();
    fs::create_dir_all(w.join("src/sub")).unwrap();
    let gone = format!("{}/./sub/gone", w.join("src").display());
    let gone_dir = format!("{}/./sub/gone-dir", w.join("src").display());
    // Each destination holds both names: a file (deleted) and a non-empty
    // directory (kept, with rsync's message); nothing else is touched.
    let mut outs = Vec::new();
    for (prog, d) in [("rsync", "r"), (BIN, "s")] {
        let dst = w.join(d);
        fs::create_dir_all(dst.join("sub/gone-dir")).unwrap();
        fs::write(dst.join("sub/gone"), b"old\n").unwrap();
        fs::write(dst.join("sub/gone-dir/f"), b"old\n").unwrap();
        fs::write(dst.join("sub/keep"), b"keep\n").unwrap();
        let target = format!("{USER}:{}/", dst.display());
        let o = run(
            prog,
            w,
            &[
                "-e",
                &rsh,
                "-rR",
                "--delete-missing-args",
                &gone,
                &gone_dir,
                &target,
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{prog}: {}", stderr(&o));
        assert!(!dst.join("sub/gone").exists(), "{prog}");
        assert_eq!(fs::read(dst.join("sub/gone-dir/f")).unwrap(), b"old\n");
        assert_eq!(fs::read(dst.join("sub/keep")).unwrap(), b"keep\n");
        assert_eq!(stderr(&o), "", "{prog}");
        outs.push(String::from_utf8_lossy(&o.stdout).into_owned());
    }
    assert_eq!(outs[0], outs[1]);
    assert_eq!(outs[1], "cannot delete non-empty directory: sub/gone-dir\n");
}
