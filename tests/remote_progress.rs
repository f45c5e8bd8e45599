//! `--remove-source-files`, `--delete-missing-args` and `--progress` over
//! push and pull through the remote shell, each run beside `rsync -e ssh`
//! with the same flags (`common::remote`): destination and remaining
//! source trees, stdout and exit codes must match. Needs root, OpenSSH and
//! rsync (skipped with a note otherwise).

mod common;

use common::remote::*;
use std::fs;
use std::path::Path;

/// The paths left below `root`, relative and sorted.
fn left(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = walk_all(root)
        .iter()
        .map(|p| p.strip_prefix(root).unwrap().display().to_string())
        .collect();
    v.sort();
    v
}

/// A destination holding an up-to-date copy of `a.txt` (its source is
/// removed too) and a non-empty directory where the source has the file
/// `sub/b.log` (the receiver fails on it: its source stays).
fn partly_there(d: &Path) {
    fs::create_dir_all(d.join("sub/b.log/x")).unwrap();
    fs::write(d.join("a.txt"), b"alpha\n").unwrap();
    fs::set_permissions(
        d.join("a.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    set_mtime(&d.join("a.txt"), (1_600_000_000, 123_456_789));
}

/// Run `flags` with rsync in `r/` and resync in `s/`, each on a fresh copy
/// of the test tree in its own `src/` (the runs remove from it), pushing or
/// pulling into `dst/`. Compares exit codes, stdout, the destination tree
/// and what is left of the source; returns resync's output.
fn both_own_src(
    env: &Env,
    pull: bool,
    flags: &[&str],
    prep: &dyn Fn(&Path),
) -> std::process::Output {
    let mut outs = Vec::new();
    for (prog, side) in [("rsync", "r"), (BIN, "s")] {
        let base = env.w().join(side);
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        make_tree(&base.join("src"));
        fix_times(&base.join("src"));
        prep(&base.join("dst"));
        if base.join("dst").is_dir() {
            set_mtime(&base.join("dst"), (1_300_000_000, 0));
        }
        let src = format!("{}/", base.join("src").display());
        let (from, to) = if pull {
            (format!("{USER}:{src}"), "dst/".to_string())
        } else {
            (src, format!("{USER}:{}/", base.join("dst").display()))
        };
        let rsh = env.rsh();
        let mut args: Vec<&str> = vec!["-e", &rsh];
        args.extend_from_slice(flags);
        args.push(&from);
        args.push(&to);
        outs.push((run(prog, &base, &args), base));
    }
    let (s, sb) = outs.pop().unwrap();
    let (r, rb) = outs.pop().unwrap();
    let what = format!("pull={pull} {flags:?}");
    assert_eq!(
        s.status.code(),
        r.status.code(),
        "{what}: {} / rsync: {}",
        stderr(&s),
        stderr(&r)
    );
    assert_eq!(norm(&s, &sb, false), norm(&r, &rb, false), "{what}: stdout");
    if rb.join("dst").exists() {
        assert_eq!(tree(&sb.join("dst")), tree(&rb.join("dst")), "{what}: dst");
    } else {
        assert!(!sb.join("dst").exists(), "{what}: dst made by resync only");
    }
    assert_eq!(left(&sb.join("src")), left(&rb.join("src")), "{what}: src");
    s
}

#[test]
fn remove_source_files_matches_rsync_both_ways() {
    let Some(env) = Env::new() else { return };
    for pull in [false, true] {
        let what = format!("pull={pull}");
        // Everything new: every non-directory's source goes, directories stay.
        let o = both_own_src(&env, pull, &["-ai", "--remove-source-files"], &nothing);
        assert_eq!(o.status.code(), Some(0), "{what}");
        let src = env.w().join("s/src");
        assert_eq!(
            left(&src),
            ["emptydir", "sub", "sub/deep"],
            "{what}: only directories are left"
        );
        assert_eq!(
            fs::read(env.w().join("s/dst/sub/deep/c")).unwrap().len(),
            5000
        );
        // An up-to-date file is removed too; one the receiver failed on stays.
        let o = both_own_src(&env, pull, &["-a", "--remove-source-files"], &partly_there);
        assert_eq!(o.status.code(), Some(23), "{what}");
        assert!(!src.join("a.txt").exists(), "{what}: up to date, removed");
        assert!(src.join("sub/b.log").exists(), "{what}: failed, kept");
        assert!(!src.join("big").exists(), "{what}");
        // Delta transfers (an older copy in place) and -vv's lines.
        let older = |d: &Path| {
            fs::create_dir_all(d).unwrap();
            fs::write(d.join("big"), common::bytes(10 << 20, 8)).unwrap();
        };
        both_own_src(
            &env,
            pull,
            &["-a", "--no-W", "--remove-source-files"],
            &older,
        );
        assert!(!src.join("big").exists(), "{what}");
        // A dry run removes nothing.
        both_own_src(&env, pull, &["-ain", "--remove-source-files"], &nothing);
        assert!(
            src.join("big").exists() && src.join("a.txt").exists(),
            "{what}"
        );
    }
}

/// A destination holding what the missing operands name: a file and a
/// directory with contents.
fn has_missing(d: &Path) {
    fs::create_dir_all(d.join("nodir/in")).unwrap();
    fs::write(d.join("nofile"), b"x").unwrap();
    fs::write(d.join("nodir/in/f"), b"y").unwrap();
    fs::write(d.join("keep"), b"z").unwrap();
    for p in ["nofile", "nodir/in/f", "nodir/in", "nodir", "keep"] {
        set_mtime(&d.join(p), (1_400_000_000, 0));
    }
}

#[test]
fn delete_missing_args_matches_rsync_both_ways() {
    let Some(env) = Env::new() else { return };
    let src = env.w().join("src");
    let host = "root@127.0.0.1:";
    for pull in [false, true] {
        let s = src.display().to_string();
        let ops = move |base: &Path| {
            let paths = [
                format!("{s}/a.txt"),
                format!("{s}/nofile"),
                format!("{s}/nodir"),
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
        for flags in [
            &["-ai", "--delete-missing-args"][..],
            &["-ai", "--delete-missing-args", "--force"],
            &["-aiv", "--delete-missing-args", "--delete"],
            &["-ain", "--delete-missing-args", "--force"],
        ] {
            let o = env.both_with(&what, flags, &ops, &has_missing, false);
            let d = env.w().join("s/dst");
            assert!(d.join("keep").exists(), "{what} {flags:?}");
            assert!(
                d.join("sub/deep/c").exists() || flags[0] == "-ain",
                "{what}"
            );
            if flags[0] == "-ai" {
                assert!(!d.join("nofile").exists(), "{what} {flags:?}");
                assert!(
                    String::from_utf8_lossy(&o.stdout).contains("*deleting   nofile"),
                    "{what} {flags:?}"
                );
            }
        }
    }
}

/// resync's stdout of a `--progress` run: every progress line (the text
/// after its last `\r`) comes right after the line naming its file, in list
/// order, with `xfr#` counting up (`whole`: `--info=progress2`'s one line,
/// rewritten after each file). Returns the names that had progress.
fn progress_follows_names(o: &std::process::Output, whole: bool) -> Vec<String> {
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let mut named = Vec::new();
    let mut xfr = 0;
    for (i, l) in lines.iter().enumerate() {
        if !l.starts_with('\r') && !l.starts_with(' ') {
            continue;
        }
        if whole {
            // One line rewritten after each file.
            for seg in l.split('\r').filter_map(progress_line) {
                xfr += 1;
                assert!(seg.contains(&format!("(xfr#{xfr}, ")), "{seg}\n{text}");
            }
            continue;
        }
        let last = l.rsplit('\r').next().unwrap();
        let Some(p) = progress_line(last) else {
            continue;
        };
        xfr += 1;
        assert!(p.contains(&format!("(xfr#{xfr}, ")), "{p}\n{text}");
        assert!(i > 0, "{text}");
        let name = lines[i - 1].rsplit(' ').next().unwrap().to_string();
        assert!(
            progress_line(lines[i - 1].rsplit('\r').next().unwrap()).is_none(),
            "two progress lines in a row:\n{text}"
        );
        named.push(name);
    }
    assert!(xfr > 0, "no progress lines:\n{text}");
    named
}

#[test]
fn progress_matches_rsync_both_ways() {
    let Some(env) = Env::new() else { return };
    for pull in [false, true] {
        let what = format!("pull={pull}");
        // Into a new destination, then over an older one: deltas,
        // deletions, a file replacing a directory, and the `to-chk=` of
        // what is left.
        let runs: [(&[&str], bool); 6] = [
            (&["-a", "--progress"], false),
            (&["-ai", "--progress"], false),
            (&["-av", "--progress"], false),
            (&["-aP"], false),
            (&["-ai", "--progress", "--delete", "--no-W"], true),
            (&["-aP", "--delete-after"], true),
        ];
        for (flags, older) in runs {
            let prep: &dyn Fn(&Path) = if older { &stale } else { &nothing };
            let o = env.both_as(pull, flags, prep, older);
            assert_eq!(o.status.code(), Some(0), "{what} {flags:?}");
            // Files in list order, each with its progress line.
            assert_eq!(
                progress_follows_names(&o, false),
                ["a.txt", "big", "empty", "run.sh", "sub/b.log", "sub/deep/c"],
                "{what} {flags:?}"
            );
            if !older {
                continue;
            }
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(
                text.lines()
                    .any(|l| l == "deleting stray" || l == "*deleting   stray"),
                "{what} {flags:?}\n{text}"
            );
        }
        // One line for the whole transfer, with and without item lines.
        for flags in [
            &["-a", "--info=progress2"][..],
            &["-aiv", "--info=progress2"],
        ] {
            let o = env.both(pull, flags, &nothing);
            assert_eq!(o.status.code(), Some(0), "{what} {flags:?}");
            progress_follows_names(&o, true);
        }
    }
}
