//! The receiver's options over ssh, pushed (the server receives: the option
//! travels on its command line) and pulled (the client receives), each run
//! beside `rsync -e ssh` with the same flags from the same destination:
//! trees (modes, owners, ns mtimes, link counts, contents), backups and
//! reference directories, stdout (byte figures blanked) and exit codes.
//! Needs root, OpenSSH and rsync (skipped with a note otherwise).

mod common;

use common::remote::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Output};

fn also(dirs: &'static [&'static str]) -> Check {
    Check {
        also: dirs,
        ..Check::default()
    }
}

#[test]
fn backups_match_rsync_both_ways() {
    let Some(env) = Env::new() else { return };
    for pull in [false, true] {
        env.both(pull, &["-ai", "-b"], &stale);
        env.both(pull, &["-ai", "-b", "--suffix=.old", "--delete"], &stale);
        env.check(
            pull,
            &["-ai", "--backup-dir=../bk", "--delete"],
            &stale,
            &also(&["bk"]),
        );
        env.check(
            pull,
            &["-a", "--backup-dir={B}/abs", "--suffix=~"],
            &stale,
            &also(&["abs"]),
        );
        env.both(pull, &["-ab", "--backup-dir=inside", "--delete"], &stale);
        // Earlier backups survive --delete (`P *~` protects them).
        env.both(pull, &["-ab", "--delete"], &|d: &Path| {
            stale(d);
            fs::write(d.join("keep~"), b"older").unwrap();
        });
        assert_eq!(fs::read(env.w().join("s/dst/keep~")).unwrap(), b"older");
        assert_eq!(fs::read(env.w().join("s/dst/stray~")).unwrap(), b"x");
    }
    // The backups hold the old contents.
    let (_, s) = env.check(false, &["-a", "--backup-dir=../bk"], &stale, &also(&["bk"]));
    assert_eq!(s.status.code(), Some(0));
    assert_eq!(
        fs::read(env.w().join("s/bk/a.txt")).unwrap(),
        b"old alpha\n"
    );
}

/// A reference tree beside the destination: the source's tree, with one
/// file changed, one with other permissions, one with another mtime.
fn prev(d: &Path) {
    let p = d.parent().unwrap().join("prev");
    make_tree(&p);
    fs::write(p.join("run.sh"), b"changed\n").unwrap();
    fs::set_permissions(p.join("a.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    set_mtime(&p.join("sub/b.log"), (1_000_000_000, 0));
    fix_times(&p);
}

#[test]
fn reference_dirs_match_rsync_both_ways() {
    let Some(env) = Env::new() else { return };
    let refs = also(&["prev"]);
    for pull in [false, true] {
        for kind in ["--link-dest", "--compare-dest", "--copy-dest"] {
            let rel = format!("{kind}=../prev");
            env.check(pull, &["-ai", &rel], &prev, &refs);
            env.check(
                pull,
                &["-ai", &rel, "--delete"],
                &|d: &Path| {
                    stale(d);
                    prev(d);
                },
                &refs,
            );
        }
        env.check(pull, &["-a", "--link-dest={B}/prev"], &prev, &refs);
        // Unchanged files are hard links into the reference tree.
        let big = fs::metadata(env.w().join("s/dst/big")).unwrap();
        let old = fs::metadata(env.w().join("s/prev/big")).unwrap();
        assert_eq!((big.ino(), big.nlink()), (old.ino(), 2), "pull={pull}");
        let (r, s) = env.check(
            pull,
            &["-ai", "--link-dest=../none", "--link-dest=../prev"],
            &prev,
            &refs,
        );
        for o in [&r, &s] {
            assert!(
                stderr(o).contains("--link-dest arg does not exist: "),
                "{}",
                stderr(o)
            );
        }
    }
}

/// The source's `big` changed in the middle; `prep` gives the destination
/// the old version and records its inode in `BASE/ino`.
fn old_big(d: &Path) {
    make_tree(d);
    fs::write(d.join("big"), common::bytes(10 << 20, 7)).unwrap();
    set_mtime(&d.join("big"), (1_600_000_005, 500));
    let ino = fs::metadata(d.join("big")).unwrap().ino();
    fs::write(d.parent().unwrap().join("ino"), ino.to_string()).unwrap();
}

fn figure(o: &Output, key: &str) -> u64 {
    common::stat_figure(&String::from_utf8_lossy(&o.stdout), key)
}

fn same_inode(env: &Env) -> bool {
    let ino: u64 = fs::read_to_string(env.w().join("s/ino"))
        .unwrap()
        .parse()
        .unwrap();
    fs::metadata(env.w().join("s/dst/big")).unwrap().ino() == ino
}

#[test]
fn inplace_and_append_match_rsync_both_ways() {
    let Some(env) = Env::new() else { return };
    let mut new = common::bytes(10 << 20, 7);
    new[5_000_000..5_000_100].fill(0xAB);
    fs::write(env.w().join("src/big"), &new).unwrap();
    set_mtime(&env.w().join("src/big"), (1_600_000_006, 0));
    let delta = Check {
        delta: true,
        ..Check::default()
    };
    for pull in [false, true] {
        // The delta is applied to the file itself.
        let (_, s) = env.check(pull, &["-a", "--inplace", "--stats"], &old_big, &delta);
        assert!(same_inode(&env), "pull={pull}: --inplace replaced the file");
        assert!(figure(&s, "Literal data:") < 1 << 20, "pull={pull}");
        assert!(figure(&s, "Matched data:") > 9 << 20, "pull={pull}");
        env.check(pull, &["-ai", "--inplace", "-b"], &old_big, &delta);
        assert!(same_inode(&env));
        assert_eq!(
            fs::read(env.w().join("s/dst/big~")).unwrap(),
            common::bytes(10 << 20, 7)
        );
        env.check(pull, &["-ai", "--inplace", "-W"], &old_big, &delta);
        assert!(same_inode(&env));
        env.both(pull, &["-ai", "--inplace", "--delete"], &stale);

        // --append sends only what is past the destination's length.
        let short = |d: &Path| {
            make_tree(d);
            fs::write(d.join("big"), &new[..4_000_000]).unwrap();
            fs::write(d.join("a.txt"), b"alp").unwrap();
            fs::write(d.join("run.sh"), b"longer than the source's run.sh\n").unwrap();
            fs::write(d.join("sub/b.log"), b"LOG").unwrap();
            for f in ["big", "a.txt", "run.sh", "sub/b.log"] {
                set_mtime(&d.join(f), (1_450_000_000, 0));
            }
            let ino = fs::metadata(d.join("big")).unwrap().ino();
            fs::write(d.parent().unwrap().join("ino"), ino.to_string()).unwrap();
        };
        let (_, s) = env.check(
            pull,
            &["-ai", "--append", "--stats"],
            &short,
            &Check::default(),
        );
        assert!(same_inode(&env));
        assert_eq!(
            figure(&s, "Literal data:"),
            new.len() as u64 - 4_000_000 + 3 + 6
        );
        env.both(pull, &["-av", "--append-verify"], &short);
        // A prefix that differs is kept by --append, redone by --append-verify.
        let wrong = |d: &Path| {
            short(d);
            fs::write(d.join("big"), common::bytes(4_000_000, 9)).unwrap();
            set_mtime(&d.join("big"), (1_450_000_000, 0));
        };
        env.both(pull, &["-ai", "--append"], &wrong);
        assert_eq!(
            fs::read(env.w().join("s/dst/big")).unwrap()[..4_000_000],
            common::bytes(4_000_000, 9)
        );
        let (r, s) = env.check(pull, &["-av", "--append-verify"], &wrong, &Check::default());
        assert_eq!(fs::read(env.w().join("s/dst/big")).unwrap(), new);
        let warn = "WARNING: big failed verification -- update retained (will try again).";
        assert!(stderr(&r).contains(warn), "{}", stderr(&r));
        assert!(stderr(&s).contains(warn), "{}", stderr(&s));
    }
}

/// `src/holes`: data, 2 MiB of zeros, data, 1 MiB of zeros at the end.
fn add_holes(src: &Path) -> Vec<u8> {
    let mut v = common::bytes(256 << 10, 11);
    v.extend(std::iter::repeat_n(0u8, 2 << 20));
    v.extend(common::bytes(4096, 12));
    v.extend(std::iter::repeat_n(0u8, 1 << 20));
    fs::write(src.join("holes"), &v).unwrap();
    set_mtime(&src.join("holes"), (1_600_000_010, 10));
    v
}

fn sparse(p: &Path) -> bool {
    let m = fs::metadata(p).unwrap();
    m.blocks() * 512 < m.len() - (2 << 20)
}

#[test]
fn how_files_are_written_matches_rsync_both_ways() {
    let Some(env) = Env::new() else { return };
    let holes = add_holes(&env.w().join("src"));
    // A partial dir on the sending side is not sent with --partial-dir.
    fs::create_dir_all(env.w().join("src/sub/.part")).unwrap();
    fs::write(env.w().join("src/sub/.part/junk"), b"junk").unwrap();
    set_mtime(&env.w().join("src/sub"), (1_500_000_000, 77));
    fix_times(&env.w().join("src"));
    for pull in [false, true] {
        env.both(pull, &["-ai", "--partial"], &stale);
        env.check(
            pull,
            &["-ai", "--partial-dir=.part", "--delete"],
            &|d: &Path| {
                stale(d);
                fs::create_dir_all(d.join("sub/.part")).unwrap();
                fs::write(d.join("sub/.part/b.log"), b"log").unwrap();
            },
            &Check::default(),
        );
        // (Not `-T ../tmp`: rsync 3.5 refuses a temp dir reached through
        // `..`, "mkstemp … failed: Invalid argument", locally too.)
        let tmp = |d: &Path| {
            stale(d);
            fs::create_dir_all(d.join("tmpd")).unwrap();
            fs::create_dir_all(d.parent().unwrap().join("tmp")).unwrap();
        };
        env.check(pull, &["-ai", "-T", "tmpd"], &tmp, &also(&["tmp"]));
        env.check(pull, &["-ai", "--temp-dir={B}/tmp"], &tmp, &also(&["tmp"]));
        // A temp dir that does not exist stops the receiver (exit 1).
        env.both(pull, &["-a", "-T", "none"], &stale);
        env.both(pull, &["-ai", "--delay-updates", "--delete"], &stale);
        env.both(pull, &["-av", "--delay-updates"], &stale);
        env.both(pull, &["-ai", "--fsync"], &stale);
        env.both(pull, &["-ai", "--preallocate"], &stale);
        env.both(pull, &["-ai", "-S"], &stale);
        assert!(sparse(&env.w().join("r/dst/holes")));
        assert!(sparse(&env.w().join("s/dst/holes")), "pull={pull}");
        env.both(pull, &["-ai", "-S", "--preallocate"], &nothing);
        assert!(sparse(&env.w().join("s/dst/holes")), "pull={pull}");
        // In place, zero runs over old data are punched out.
        let filled = |d: &Path| {
            make_tree(d);
            fs::write(d.join("holes"), vec![7u8; holes.len()]).unwrap();
        };
        env.both(pull, &["-ai", "-S", "--inplace"], &filled);
        assert_eq!(
            sparse(&env.w().join("s/dst/holes")),
            sparse(&env.w().join("r/dst/holes")),
            "pull={pull}"
        );
        assert_eq!(fs::read(env.w().join("s/dst/holes")).unwrap(), holes);
    }
}

#[test]
fn partial_keeps_what_arrived_when_the_peer_dies() {
    let Some(env) = Env::new() else { return };
    let rsh = env.rsh();
    let src = env.w().join("src");
    let want = fs::read(src.join("big")).unwrap();
    let script = |name: &str, body: String| {
        let p = env.w().join(name);
        fs::write(&p, body).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    };
    // Pull: the server is killed after 3 MB of its output.
    let cut = script(
        "cut.sh",
        format!(
            "#!/bin/sh\nexec 3<&0\nd=$(mktemp -d)\nmkfifo $d/f\n{BIN} \"$@\" <&3 > $d/f & pid=$!\n\
             stdbuf -o0 head -c 3000000 < $d/f\nkill -9 $pid\nrm -r $d\n"
        ),
    );
    // Push: the server's input ends after 2 MB.
    let cut_in = script(
        "cut_in.sh",
        format!("#!/bin/sh\nstdbuf -o0 head -c 2000000 | {BIN} \"$@\"\n"),
    );
    let from = format!("{USER}:{}/", src.display());
    for (pull, partial_dir) in [(true, false), (false, false), (true, true), (false, true)] {
        let dst = env.w().join(format!("d-{pull}-{partial_dir}"));
        fs::create_dir(&dst).unwrap();
        let to = format!("{USER}:{}/", dst.display());
        let flag = if partial_dir {
            "--partial-dir=.p"
        } else {
            "--partial"
        };
        let d = dst.display().to_string();
        let (path, a, b) = if pull {
            (&cut, from.as_str(), d.as_str())
        } else {
            (&cut_in, "src/", to.as_str())
        };
        let o = Command::new(BIN)
            .args(["-a", flag, "-e", &rsh, "--rsync-path", path, a, b])
            .current_dir(env.w())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(12), "{}", stderr(&o));
        let kept = if partial_dir {
            assert!(!dst.join("big").exists());
            dst.join(".p/big")
        } else {
            dst.join("big")
        };
        let got = fs::read(&kept).unwrap_or_default();
        assert!(
            !got.is_empty() && got.len() < want.len() && want.starts_with(&got),
            "pull={pull}: kept {} bytes",
            got.len()
        );
        assert!(temp_files(&dst).is_empty(), "{:?}", temp_files(&dst));
        // A rerun completes and drops the partial file.
        let o = run(BIN, env.w(), &["-a", flag, "-e", &rsh, a, b]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(tree(&dst), tree(&src), "pull={pull} {flag}");
    }
}

#[test]
fn metadata_and_selection_options_match_rsync_both_ways() {
    let Some(env) = Env::new() else { return };
    for pull in [false, true] {
        env.both(pull, &["-ai", "--chmod=F600,D750"], &stale);
        env.both(pull, &["-ai", "--chmod=Fgo-w,+X", "--delete"], &stale);
        env.both(pull, &["-rlti", "-E"], &|d: &Path| {
            make_tree(d);
            for f in ["run.sh", "a.txt"] {
                fs::set_permissions(d.join(f), fs::Permissions::from_mode(0o600)).unwrap();
                set_mtime(&d.join(f), (1_400_000_000, 0));
            }
        });
        env.both(pull, &["-ai", "--chown=1234:5678"], &stale);
        env.both(pull, &["-ai", "--chown=:99"], &nothing);
        env.both(pull, &["-ai", "--max-size=6k"], &stale);
        env.both(pull, &["-ai", "--min-size=10", "--delete"], &stale);
        env.both(pull, &["-ai", "--ignore-errors", "--delete"], &stale);
        env.check(
            pull,
            &["-ai", "--mkpath"],
            &nothing,
            &Check {
                dst: Some("new/deeper/"),
                also: &["new"],
                ..Check::default()
            },
        );
        env.check(
            pull,
            &["-a"],
            &nothing,
            &Check {
                dst: Some("new/deeper/"),
                also: &["new"],
                ..Check::default()
            },
        );
        // -K: a symlink to a directory on the receiver stays, its target
        // gets the contents (as the man page says and rsync up to 3.4 did;
        // rsync 3.5 refuses to stat below it, "Too many levels of symbolic
        // links", exit 23, locally too). Without -K it is replaced.
        let dirlink = |d: &Path| {
            fs::create_dir_all(d).unwrap();
            fs::create_dir_all(d.parent().unwrap().join("real")).unwrap();
            symlink("../real", d.join("sub")).unwrap();
        };
        let base = env.w().join(format!("k-{pull}"));
        dirlink(&base.join("dst"));
        let rsh = env.rsh();
        let src = format!("{}/", env.w().join("src").display());
        let (from, to) = if pull {
            (format!("{USER}:{src}"), "dst/".to_string())
        } else {
            (src, format!("{USER}:{}/dst/", base.display()))
        };
        let o = run(BIN, &base, &["-e", &rsh, "-aK", &from, &to]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            fs::symlink_metadata(base.join("dst/sub"))
                .unwrap()
                .is_symlink()
        );
        let mut want = tree(&env.w().join("src/sub"));
        want.retain(|l| !l.contains(" -> "));
        let mut got = tree(&base.join("real"));
        got.retain(|l| !l.contains(" -> "));
        assert_eq!(got, want, "pull={pull}");
        env.check(pull, &["-ai"], &dirlink, &also(&["real"]));
        // -J: symlink times are left alone.
        let link_ns = |p: &Path| {
            let m = fs::symlink_metadata(p).unwrap();
            (m.mtime(), m.mtime_nsec())
        };
        let src_link = link_ns(&env.w().join("src/link"));
        env.both(pull, &["-a"], &nothing);
        assert_eq!(link_ns(&env.w().join("s/dst/link")), src_link);
        env.both(pull, &["-aJ"], &nothing);
        assert_ne!(link_ns(&env.w().join("s/dst/link")), src_link);
        assert_ne!(link_ns(&env.w().join("r/dst/link")), src_link);
    }
}
