//! The sender-side and metadata options over push and pull through a real
//! OpenSSH server, each run beside `rsync -e ssh` with the same flags
//! (`common::remote`): hard-link groups (inode equality), xattrs and ACLs,
//! `-c`, `--atimes`. Trees, stdout (byte figures blanked) and exit codes
//! must match. Needs root, OpenSSH and rsync (skipped with a note otherwise).

mod common;

use common::remote::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

fn write(root: &Path, p: &str, data: &[u8], mtime: (i64, u32)) {
    let path = root.join(p);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, data).unwrap();
    set_mtime(&path, mtime);
}

/// Two groups across directories, a file whose other link is outside the
/// tree, a lone file.
fn linked_tree(root: &Path) {
    write(root, "a", b"hello\n", (1_600_000_000, 1));
    write(root, "d/q", b"q\n", (1_600_000_001, 2));
    write(root, "lone", b"lone\n", (1_600_000_002, 3));
    write(root, "half", b"half\n", (1_600_000_003, 4));
    fs::hard_link(root.join("a"), root.join("d/b")).unwrap();
    fs::hard_link(root.join("a"), root.join("c")).unwrap();
    fs::create_dir_all(root.join("d/e")).unwrap();
    fs::hard_link(root.join("a"), root.join("d/e/deep")).unwrap();
    fs::hard_link(root.join("d/q"), root.join("q2")).unwrap();
    fs::hard_link(root.join("half"), root.parent().unwrap().join("outside")).unwrap();
    for d in ["d/e", "d"] {
        set_mtime(&root.join(d), (1_500_000_000, 5));
    }
}

#[test]
fn hard_links_match_rsync_both_ways() {
    let Some(env) = Env::with(&linked_tree) else {
        return;
    };
    // A destination with one member already there (a copy, not a link) and
    // another member's name taken by an unrelated file.
    let part = |d: &Path| {
        write(d, "d/b", b"hello\n", (1_600_000_000, 1));
        write(d, "q2", b"other\n", (1_400_000_000, 0));
        set_mtime(&d.join("d"), (1_500_000_000, 5));
    };
    for pull in [false, true] {
        env.both(pull, &["-aH"], &nothing);
        env.both(pull, &["-aiH"], &nothing);
        env.both(pull, &["-aiH"], &part);
        env.both(pull, &["-avH", "--delete"], &part);
        env.both(pull, &["-aiHn"], &part);
        // Without -H the group is copied as separate files.
        env.both(pull, &["-ai"], &nothing);
        env.both(pull, &["-aiH"], &nothing);
        let o = env.rerun(pull, &["-aiH"]);
        assert!(
            o.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
        let d = env.w().join("s/dst");
        let ino = |p: &str| fs::metadata(d.join(p)).unwrap().ino();
        assert_eq!(ino("a"), ino("d/b"));
        assert_eq!(ino("a"), ino("d/e/deep"));
        assert_eq!(ino("q2"), ino("d/q"));
        assert_ne!(ino("a"), ino("q2"));
        assert_eq!(fs::metadata(d.join("a")).unwrap().nlink(), 4);
    }
}

fn setfattr(p: &Path, name: &str, value: &str) {
    let st = Command::new("setfattr")
        .args(["-h", "-n", name, "-v", value])
        .arg(p)
        .status()
        .expect("setfattr (apt-get install attr)");
    assert!(st.success());
}

fn setfacl(p: &Path, args: &[&str]) {
    let st = Command::new("setfacl")
        .args(args)
        .arg(p)
        .status()
        .expect("setfacl (apt-get install acl)");
    assert!(st.success());
}

/// Files and a directory with user xattrs, a trusted one (root copies it),
/// access ACLs and a default ACL.
fn xattr_tree(root: &Path) {
    write(root, "x", b"x\n", (1_600_000_000, 1));
    write(root, "y", b"y\n", (1_600_000_001, 2));
    write(root, "plain", b"p\n", (1_600_000_002, 3));
    write(root, "dir/in", b"in\n", (1_600_000_003, 4));
    std::os::unix::fs::symlink("x", root.join("link")).unwrap();
    setfattr(&root.join("x"), "user.colour", "blue");
    setfattr(&root.join("x"), "user.empty", "");
    setfattr(&root.join("x"), "trusted.t", "root only");
    setfattr(&root.join("dir"), "user.d", "0x00ff10");
    setfacl(&root.join("y"), &["-m", "u:nobody:rw,g:daemon:r"]);
    setfacl(
        &root.join("dir"),
        &["-m", "u:nobody:rx", "-d", "-m", "u:nobody:r"],
    );
    set_mtime(&root.join("dir"), (1_500_000_000, 6));
}

#[test]
fn xattrs_and_acls_match_rsync_both_ways() {
    let Some(env) = Env::with(&xattr_tree) else {
        return;
    };
    // A destination whose files carry xattrs and ACLs the source lacks, and
    // others with stale values.
    let stale = |d: &Path| {
        write(d, "x", b"x\n", (1_600_000_000, 1));
        write(d, "plain", b"p\n", (1_600_000_002, 3));
        setfattr(&d.join("x"), "user.colour", "red");
        setfattr(&d.join("plain"), "user.gone", "1");
        // (An entry that leaves the mode's group bits alone: with one that
        // widens the mask, resync, also locally, itemizes a `p` that rsync
        // does not.)
        setfacl(&d.join("plain"), &["-m", "u:daemon:r"]);
    };
    for pull in [false, true] {
        env.both(pull, &["-aX"], &nothing);
        env.both(pull, &["-aiX"], &stale);
        env.both(pull, &["-aA"], &nothing);
        env.both(pull, &["-aiA"], &stale);
        env.both(pull, &["-aiXA"], &stale);
        env.both(pull, &["-aiXAn"], &stale);
        // Without -X/-A nothing of them travels.
        env.both(pull, &["-ai"], &stale);
        env.both(pull, &["-aXA"], &nothing);
        let o = env.rerun(pull, &["-aiXA"]);
        assert!(
            o.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
        let x = xattrs(&env.w().join("s/dst/x"));
        assert!(x.contains("user.colour=626c7565"), "{x}");
        assert!(x.contains("trusted.t="), "{x}");
        assert!(acls(&env.w().join("s/dst")).contains("default:user:nobody:r--"));
    }
}

/// Same sizes and mtimes, other content: only `-c` sees the difference.
fn same_stat(d: &Path) {
    write(d, "a.txt", b"alphA\n", (1_600_000_000, 123_456_789));
    write(
        d,
        "run.sh",
        b"#!/bin/sh\necho ho\n",
        (1_600_000_002, 999_999_999),
    );
    write(d, "sub/b.log", b"log line\n", (1_600_000_003, 5));
    write(d, "empty", b"", (1_600_000_001, 1));
    set_mtime(&d.join("sub"), (1_500_000_000, 77));
}

#[test]
fn checksum_matches_rsync_both_ways() {
    let Some(env) = Env::new() else { return };
    for pull in [false, true] {
        env.both(pull, &["-ac"], &nothing);
        env.both(pull, &["-aic"], &same_stat);
        env.both(pull, &["-aic", "--stats"], &same_stat);
        env.both(pull, &["-ai"], &same_stat);
        env.both(pull, &["-aicn", "--delete"], &same_stat);
        env.both(pull, &["-aic", "--delete"], &same_stat);
        let o = env.rerun(pull, &["-aic"]);
        assert!(
            o.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    let got = fs::read(env.w().join("s/dst/a.txt")).unwrap();
    assert_eq!(got, b"alpha\n");
}

#[test]
fn atimes_match_rsync_both_ways() {
    let Some(env) = Env::new() else { return };
    let src = env.w().join("src");
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_000_000_000, 250_000_000);
    for f in ["a.txt", "sub/deep/c", "big"] {
        fs::File::open(src.join(f))
            .unwrap()
            .set_times(fs::FileTimes::new().set_accessed(t))
            .unwrap();
    }
    for pull in [false, true] {
        // -UU also opens the sources with O_NOATIME: both runs see the
        // atimes set above.
        env.both(pull, &["-aiUU"], &nothing);
        for f in ["a.txt", "sub/deep/c", "big"] {
            let at = |side: &str| {
                let m = fs::metadata(env.w().join(side).join("dst").join(f)).unwrap();
                (m.atime(), m.atime_nsec())
            };
            assert_eq!(at("s"), at("r"), "pull={pull} {f}");
            assert_eq!(at("s").0, 1_000_000_000, "pull={pull} {f}");
        }
    }
}

#[test]
fn list_only_and_a_pull_without_destination_match_rsync() {
    let Some(env) = Env::new() else { return };
    let src = env.w().join("src");
    let remote = |p: &str| format!("root@127.0.0.1:{}", src.join(p).display());
    let pull_only = |p: &'static str| {
        let r = remote(p);
        move |_: &Path| vec![r.clone()]
    };
    // `host:src/`, `host:src` (-r), one file, a missing path (exit 23).
    for (flags, path) in [
        (&[][..], ""),
        (&["-v"][..], ""),
        (&["-r"][..], "../src"),
        (&["-rv", "--exclude=deep"][..], ""),
        (&["-a"][..], "a.txt"),
        (&["-rh"][..], "sub"),
        (&[][..], "nonexist"),
    ] {
        let path: &'static str = if path.is_empty() {
            "./"
        } else {
            Box::leak(path.to_string().into_boxed_str())
        };
        env.both_with("no dest", flags, &pull_only(path), &nothing, false);
    }
    // --list-only with a destination, pushed and pulled: nothing is written.
    for pull in [false, true] {
        let o = env.both(pull, &["--list-only", "-a"], &nothing);
        assert!(String::from_utf8_lossy(&o.stdout).contains(" sub/deep/c\n"));
        assert!(!env.w().join("s/dst").exists() && !env.w().join("r/dst").exists());
        env.both(pull, &["--list-only", "-v"], &nothing);
    }
}

/// Safe and unsafe symlinks (absolute, climbing out of the tree), a link to
/// a directory outside, empty directories.
fn link_tree(root: &Path) {
    let out = root.parent().unwrap().join("out");
    write(&out, "t", b"t\n", (1_600_000_000, 1));
    write(&out, "od/f", b"f\n", (1_600_000_001, 2));
    set_mtime(&out.join("od"), (1_500_000_000, 3));
    write(root, "a", b"a\n", (1_600_000_002, 4));
    let l = |t: &str, p: &str| std::os::unix::fs::symlink(t, root.join(p)).unwrap();
    fs::create_dir_all(root.join("sub/emp2")).unwrap();
    fs::create_dir_all(root.join("emp")).unwrap();
    l("../out/t", "unsafe");
    l("/etc/hostname", "abs");
    l("../a", "sub/safe");
    l("../out/od", "dirlink");
    l("sub", "inlink");
    for d in ["sub/emp2", "sub", "emp"] {
        set_mtime(&root.join(d), (1_500_000_000, 5));
    }
}

#[test]
fn symlink_options_and_prune_empty_dirs_match_rsync_both_ways() {
    let Some(env) = Env::with(&link_tree) else {
        return;
    };
    for pull in [false, true] {
        for flags in [
            &["-ai", "--safe-links"][..],
            &["-ai", "--copy-unsafe-links"][..],
            &["-ai", "--copy-dirlinks"][..],
            &["-ai", "-L"][..],
            &["-aim"][..],
            &["-aim", "--exclude=a"][..],
        ] {
            env.both(pull, flags, &nothing);
        }
        let d = env.w().join("s/dst");
        assert!(d.join("sub/safe").is_symlink());
    }
    // --safe-links: the unsafe links are left out, whichever side sends.
    for pull in [false, true] {
        env.both(pull, &["-a", "--safe-links"], &nothing);
        let d = env.w().join("s/dst");
        assert!(
            fs::symlink_metadata(d.join("unsafe")).is_err(),
            "pull={pull}"
        );
        assert!(fs::symlink_metadata(d.join("abs")).is_err(), "pull={pull}");
    }
}

#[test]
fn ignore_missing_args_matches_rsync_both_ways() {
    let Some(env) = Env::new() else { return };
    let src = env.w().join("src");
    let host = "root@127.0.0.1:";
    for pull in [false, true] {
        let s = src.display().to_string();
        let ops = move |base: &Path| {
            let paths = [
                format!("{s}/a.txt"),
                format!("{s}/nonexist"),
                format!("{s}/sub"),
            ];
            if pull {
                let mut v = vec![format!("{host}{}", paths[0])];
                v.extend(paths[1..].iter().map(|p| format!(":{p}")));
                v.push("dst/".into());
                v
            } else {
                let mut v = paths.to_vec();
                v.push(format!("{host}{}/", base.join("dst").display()));
                v
            }
        };
        let what = format!("pull={pull}");
        env.both_with(
            &what,
            &["-ai", "--ignore-missing-args"],
            &ops,
            &nothing,
            false,
        );
        env.both_with(&what, &["-ai"], &ops, &nothing, false);
        assert!(env.w().join("s/dst/sub/deep/c").exists(), "{what}");
    }
}

/// Names with high-bit bytes (UTF-8 `é`, a lone 0xFF) and a tab.
fn odd_names(root: &Path) {
    use std::os::unix::ffi::OsStrExt;
    for (i, n) in [&b"caf\xc3\xa9"[..], b"hi\xff", b"t\tab"]
        .iter()
        .enumerate()
    {
        let p = root.join(std::ffi::OsStr::from_bytes(n));
        fs::write(&p, b"x").unwrap();
        set_mtime(&p, (1_600_000_000 + i as i64, 7));
    }
    set_mtime(root, (1_500_000_000, 0));
}

#[test]
fn eight_bit_output_matches_rsync_both_ways() {
    let Some(env) = Env::with(&odd_names) else {
        return;
    };
    for pull in [false, true] {
        // A byte that is not UTF-8 is escaped, in any locale, unless -8.
        // (`é` is escaped too outside a UTF-8 locale: the client's, which
        // the server learns in the handshake.)
        let plain = env.both(pull, &["-ai"], &nothing);
        assert!(
            String::from_utf8_lossy(&plain.stdout).contains("hi\\#377"),
            "pull={pull}"
        );
        let raw = env.both(pull, &["-ai8"], &nothing);
        assert!(
            raw.stdout.windows(3).any(|w| w == b"hi\xff"),
            "pull={pull}: {}",
            String::from_utf8_lossy(&raw.stdout)
        );
        env.both(pull, &["-av8", "--progress"], &nothing);
    }
}

/// `--debug` stays with the client, as in rsync (whose client does not
/// forward it): a push's sender prints its `hiding` lines, a pull's
/// receiver its `protecting` lines, and the server's lines follow only
/// from the `-v` count it is given.
#[test]
fn debug_output_matches_rsync_both_ways() {
    let Some(env) = Env::new() else { return };
    for pull in [false, true] {
        let o = env.both(pull, &["-a", "--debug=FILTER", "--exclude=*.log"], &stale);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(
            out.contains("[sender] hiding file sub/b.log because of pattern *.log"),
            !pull,
            "pull={pull}: {out}"
        );
        let flags = [
            "-av",
            "--debug=FILTER",
            "--exclude=*.log",
            "--exclude=stray",
            "--delete",
        ];
        let o = env.both(pull, &flags, &stale);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(
            out.contains("[generator] protecting file stray because of pattern stray"),
            pull,
            "pull={pull}: {out}"
        );
        env.both(pull, &["-a", "--debug=DEL", "--delete"], &stale);
        env.both(
            pull,
            &["-ai", "--debug=FILTER,DEL", "--exclude=*.log", "--delete"],
            &stale,
        );
    }
}

/// Names with spaces, a quote and wildcard characters, for `-s`.
fn spaced_names(root: &Path) {
    for (i, n) in ["a b.txt", "it's.txt", "c.log", "star*.txt"]
        .iter()
        .enumerate()
    {
        let p = root.join(n);
        fs::write(&p, n.as_bytes()).unwrap();
        set_mtime(&p, (1_600_000_000 + i as i64, 11));
    }
    fs::create_dir(root.join("sub dir")).unwrap();
    fs::write(root.join("sub dir/x"), b"x").unwrap();
    set_mtime(&root.join("sub dir/x"), (1_600_000_010, 0));
    set_mtime(&root.join("sub dir"), (1_500_000_000, 0));
    set_mtime(root, (1_500_000_001, 0));
}

/// `-s`/`--secluded-args`: the options and paths go through the protocol,
/// not the remote shell, so spaces, quotes and wildcards reach the server
/// as given and the server expands the wildcards itself, as rsync's does.
#[test]
fn secluded_args_match_rsync_both_ways() {
    let Some(env) = Env::with(&spaced_names) else {
        return;
    };
    let src = env.w().join("src").display().to_string();
    // Pulls: a name with a space, one with a quote, a wildcard the server
    // expands, a whole directory with a space in its name.
    for path in ["a b.txt", "it's.txt", "*.txt", "sub dir"] {
        let s = src.clone();
        let ops = move |_: &Path| vec![format!("{USER}:{s}/{path}"), "dst/".into()];
        let o = env.both_with(&format!("pull {path}"), &["-ais"], &ops, &nothing, false);
        assert!(!o.stdout.is_empty(), "pull {path}: nothing transferred");
    }
    let o = env.both_with(
        "pull *.txt",
        &["-ais"],
        &|_: &Path| vec![format!("{USER}:{src}/*.txt"), "dst/".into()],
        &nothing,
        false,
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    for n in ["a b.txt", "it's.txt", "star*.txt"] {
        assert!(out.contains(n), "{out}");
    }
    assert!(!out.contains("c.log"), "{out}");
    // Pushes into a destination whose name has a space and a quote.
    for (dst, dir) in [("dst dir/", "dst dir"), ("it's/", "it's")] {
        let c = Check {
            dst: Some(dst),
            also: if dir == "it's" {
                &["it's"]
            } else {
                &["dst dir"]
            },
            ..Check::default()
        };
        env.check(false, &["-ais", "--delete"], &nothing, &c);
        let got = fs::read(env.w().join("s").join(dir).join("a b.txt")).unwrap();
        assert_eq!(got, b"a b.txt");
    }
}

/// A new release beside the old one, a renamed file (same size and mtime)
/// and an empty file with a near name.
fn fuzzy_tree(root: &Path) {
    let tar = common::bytes(300_000, 7);
    write(root, "rel/app-1.3.tar", &tar, (1_600_000_100, 0));
    write(root, "rel/notes.txt", b"notes\n", (1_600_000_101, 0));
    write(
        root,
        "other/blob.bin",
        &common::bytes(200_000, 8),
        (1_600_000_102, 0),
    );
    for d in ["rel", "other"] {
        set_mtime(&root.join(d), (1_500_000_000, 0));
    }
}

/// The destination (or a reference directory) `fuzzy_tree` is fuzzy
/// against: the old release (4 bytes differ), the renamed blob, an empty
/// file nearer by name.
fn fuzzy_basis(d: &Path) {
    let mut old = common::bytes(300_000, 7);
    old[150_000..150_004].copy_from_slice(b"v1.2");
    write(d, "rel/app-1.2.tar", &old, (1_500_000_100, 0));
    write(d, "rel/app-1.3.ta", b"", (1_500_000_100, 0));
    write(
        d,
        "other/renamed",
        &common::bytes(200_000, 8),
        (1_600_000_102, 0),
    );
}

#[test]
fn fuzzy_bases_match_rsync_both_ways() {
    let Some(env) = Env::with(&fuzzy_tree) else {
        return;
    };
    let literal = |o: &std::process::Output| {
        common::stat_figure(&String::from_utf8_lossy(&o.stdout), "Literal data:")
    };
    let total = 300_000 + 6 + 200_000;
    let delta = Check {
        delta: true,
        ..Check::default()
    };
    for pull in [false, true] {
        // Without -y every new file is sent whole.
        let (r, s) = env.check(pull, &["-ai", "--stats"], &fuzzy_basis, &delta);
        assert_eq!((literal(&r), literal(&s)), (total, total), "pull={pull}");
        // With -y (and with --delete-after, which deletes the old names only
        // after the transfer) both files find their basis.
        for flags in [
            &["-ai", "-y", "--stats"][..],
            &["-ai", "-y", "--delete-after", "--stats"],
        ] {
            let (r, s) = env.check(pull, flags, &fuzzy_basis, &delta);
            assert!(literal(&r) < 20_000, "rsync {flags:?}: {}", literal(&r));
            assert!(
                literal(&s) < 20_000,
                "pull={pull} {flags:?}: {}",
                literal(&s)
            );
        }
        // --delete (during) removes the old names first, as in rsync.
        let (r, s) = env.check(
            pull,
            &["-ai", "-y", "--delete", "--stats"],
            &fuzzy_basis,
            &delta,
        );
        assert_eq!((literal(&r), literal(&s)), (total, total), "pull={pull}");
        // -yy also looks in the reference directories.
        let refdir = |d: &Path| fuzzy_basis(&d.parent().unwrap().join("base"));
        let c = Check {
            delta: true,
            also: &["base"],
            ..Check::default()
        };
        let flags = ["-ai", "-yy", "--compare-dest={B}/base", "--stats"];
        let (r, s) = env.check(pull, &flags, &refdir, &c);
        assert!(literal(&r) < 20_000, "rsync -yy: {}", literal(&r));
        assert!(literal(&s) < 20_000, "pull={pull} -yy: {}", literal(&s));
        let (r, s) = env.check(
            pull,
            &["-ai", "-y", "--compare-dest={B}/base", "--stats"],
            &refdir,
            &c,
        );
        assert_eq!((literal(&r), literal(&s)), (total, total), "pull={pull} -y");
    }
}
