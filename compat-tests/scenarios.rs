//! The scenario matrix. Ids are `group/...`; the group is the name of the `#[test]`
//! function in `main.rs` that runs it. Operands are relative to the work dir (or to the
//! scenario's `cwd`): the source is `src`, the destination `dst`.

use std::path::Path;

use crate::run::{Dest, Norm, Scenario, User};
use crate::snapshot::Mask;
use crate::tree::{self, Tree};

use Dest::{Absent, Empty, File, Prepopulated};

fn s(id: &str, tree: Tree, dest: Dest, args: &[&str]) -> Scenario {
    Scenario::new(id, tree, dest, args)
}

/// `flags` split on spaces, followed by `src/ dst/`.
fn sd(id: &str, tree: Tree, dest: Dest, flags: &str) -> Scenario {
    let mut a: Vec<&str> = flags.split(' ').filter(|f| !f.is_empty()).collect();
    a.extend(["src/", "dst/"]);
    Scenario::new(id, tree, dest, &a)
}

/// A slug for a flag string: `-a --max-size=1k` -> `a_max-size=1k`.
fn slug(flags: &str) -> String {
    flags
        .split(' ')
        .filter(|f| !f.is_empty())
        .map(|f| f.trim_start_matches('-').replace('/', "_"))
        .collect::<Vec<_>>()
        .join("_")
}

// ---- setup hooks ----

fn unreadable_file(w: &Path) {
    tree::chmod(&w.join("src/file1.txt"), 0o000);
}
fn unreadable_dir(w: &Path) {
    tree::chmod(&w.join("src/dir1"), 0o000);
}
/// Owned by root, mode 0755: nobody can neither write into it nor chmod it.
fn readonly_dst(w: &Path) {
    tree::lchown(&w.join("dst"), 0, 0);
    tree::chmod(&w.join("dst"), 0o755);
}
fn readonly_subdir(w: &Path) {
    tree::lchown(&w.join("dst/dir1"), 0, 0);
    tree::chmod(&w.join("dst/dir1"), 0o755);
}
fn make_tmpd(w: &Path) {
    tree::mkdir(&w.join("tmpd"));
}
/// Basis files for delta transfers (`--no-W`), derived from the generated
/// `large/big.bin` so both work dirs get the same bytes: the source looks like
/// the destination with 4 KiB prepended and a range rewritten; shorter and
/// longer targets than their basis; an emptied file; files smaller than a
/// chunk. All sizes differ, so the quick check sends every one.
fn delta_bases(w: &Path) {
    let (s, d) = (w.join("src/large"), w.join("dst/large"));
    let big = std::fs::read(s.join("big.bin")).unwrap();
    let mut basis = big[4096..].to_vec();
    basis[1 << 20..(1 << 20) + 3000].fill(0x5a);
    tree::write(&d.join("big.bin"), &basis);
    tree::write(&s.join("shrunk.bin"), &big[..500_000]);
    tree::write(&d.join("shrunk.bin"), &big[..1_000_000]);
    tree::write(&s.join("grown.bin"), &big[..1_500_000]);
    let mut g = big[..700_000].to_vec();
    g[10..20].fill(1);
    tree::write(&d.join("grown.bin"), &g);
    tree::write(&s.join("emptied.bin"), b"");
    tree::write(&d.join("emptied.bin"), &big[..10_000]);
    tree::write(&s.join("tiny.bin"), &big[..100]);
    tree::write(&d.join("tiny.bin"), &big[5..95]);
}
fn make_backup_target(w: &Path) {
    tree::mkdir(&w.join("bak"));
}

fn basic(v: &mut Vec<Scenario>) {
    use Tree::Basic as B;
    // Trailing-slash rules, fresh and existing destination.
    for (dname, dest) in [("absent", Absent), ("empty", Empty)] {
        for (form, args) in [
            ("src-slash_dst-slash", ["src/", "dst/"]),
            ("src-slash_dst", ["src/", "dst"]),
            ("src_dst-slash", ["src", "dst/"]),
            ("src_dst", ["src", "dst"]),
            ("src-dot_dst", ["src/.", "dst"]),
        ] {
            let mut a = vec!["-a"];
            a.extend(args);
            v.push(s(&format!("basic/slash/{dname}/{form}"), B, dest, &a));
        }
    }
    v.push(s("basic/r/src-slash", B, Absent, &["-r", "src/", "dst/"]));
    v.push(s("basic/r/src", B, Absent, &["-r", "src", "dst"]));
    v.push(s("basic/d/src-slash", B, Absent, &["-d", "src/", "dst/"]));
    v.push(s("basic/d/src", B, Absent, &["-d", "src", "dst"]));
    v.push(s("basic/no-r/dir-skipped", B, Absent, &["src", "dst/"]));
    v.push(s(
        "basic/no-r/files",
        B,
        Absent,
        &["src/file1.txt", "src/file2.txt", "dst/"],
    ));
    v.push(s(
        "basic/no-r/-t-file",
        B,
        Absent,
        &["-t", "src/file1.txt", "dst"],
    ));
    // Several sources.
    v.push(s(
        "basic/multi/files-and-dirs",
        B,
        Absent,
        &["-a", "src/file1.txt", "src/dir1", "src/emptydir", "dst/"],
    ));
    v.push(s(
        "basic/multi/dir-contents",
        B,
        Empty,
        &["-a", "src/dir1/", "src/dir2", "dst/"],
    ));
    v.push(s(
        "basic/multi/two-files-no-slash",
        B,
        Absent,
        &["-a", "src/file1.txt", "src/tiny", "dst"],
    ));
    v.push(s(
        "basic/multi/same-name-twice",
        B,
        Empty,
        &["-a", "src/dir1/a.txt", "src/dir1/", "dst/"],
    ));
    v.push(s(
        "basic/single-file/to-new-name",
        B,
        Absent,
        &["-a", "src/file1.txt", "dst"],
    ));
    v.push(s(
        "basic/single-file/to-dir",
        B,
        Empty,
        &["-a", "src/file1.txt", "dst"],
    ));
    v.push(s(
        "basic/single-file/to-file",
        B,
        File,
        &["-a", "src/file1.txt", "dst"],
    ));
    v.push(s(
        "basic/single-file/to-absent-slash",
        B,
        Absent,
        &["-a", "src/file1.txt", "dst/"],
    ));
    v.push(s(
        "basic/single-file/empty",
        B,
        Absent,
        &["-a", "src/empty", "dst"],
    ));
    // -R and --no-implied-dirs.
    v.push(s(
        "basic/R/file",
        B,
        Absent,
        &["-aR", "src/dir1/sub/c.txt", "dst/"],
    ));
    v.push(s(
        "basic/R/dot-dir",
        B,
        Absent,
        &["-aR", "src/./dir1/sub", "dst/"],
    ));
    v.push(s(
        "basic/R/leading-dot",
        B,
        Absent,
        &["-aiR", "./src/dir1/sub", "dst/"],
    ));
    v.push(s(
        "basic/R/no-implied-dirs",
        B,
        Absent,
        &["-aR", "--no-implied-dirs", "src/dir1/sub", "dst/"],
    ));
    v.push(s(
        "basic/R/two",
        B,
        Empty,
        &["-aR", "src/dir1/a.txt", "src/dir2", "dst"],
    ));
    // --mkpath.
    v.push(s(
        "basic/mkpath/deep-dir",
        B,
        Absent,
        &["-a", "--mkpath", "src/", "dst/a/b/c/"],
    ));
    v.push(s(
        "basic/mkpath/file-rename",
        B,
        Absent,
        &["-a", "--mkpath", "src/file1.txt", "dst/x/y.txt"],
    ));
    v.push(s(
        "basic/mkpath/missing-parent-without",
        B,
        Absent,
        &["-a", "src/", "dst/a/b/"],
    ));
    // Misc.
    v.push(sd("basic/x", B, Absent, "-ax"));
    v.push(sd("basic/n/fresh", B, Absent, "-an"));
    v.push(sd("basic/n/prepopulated", B, Prepopulated, "-an"));
    v.push(s("basic/cwd/src-dot", B, Absent, &["-a", ".", "../dst/"]).cwd("src"));
    v.push(
        s(
            "basic/cwd/src-dot-slash",
            B,
            Absent,
            &["-a", "./", "../dst"],
        )
        .cwd("src"),
    );
    v.push(s("basic/cwd/into-dot", B, Empty, &["-a", "../src/", "."]).cwd("dst"));
    v.push(sd("basic/full/a", Tree::Full, Absent, "-a"));
    v.push(sd(
        "basic/full/a-prepopulated",
        Tree::Full,
        Prepopulated,
        "-a",
    ));
    v.push(sd("basic/names/a", Tree::Names, Absent, "-a"));
    v.push(sd(
        "basic/names/a-prepopulated",
        Tree::Names,
        Prepopulated,
        "-a",
    ));
    v.push(
        s(
            "basic/remove-source-files",
            B,
            Absent,
            &["-a", "--remove-source-files", "src/", "dst/"],
        )
        .modifies_src(),
    );
    // Filters (not the focus here, but a drop-in needs the common forms).
    for flags in [
        "-a --exclude=dir1",
        "-a --exclude=*.txt",
        "-a --include=*/ --include=*.txt --exclude=*",
        "-a --exclude=/file1.txt --exclude=sub/",
        "-a -C",
    ] {
        v.push(sd(
            &format!("basic/filter/{}", slug(flags)),
            B,
            Absent,
            flags,
        ));
    }
    v.push(sd(
        "basic/filter/delete-excluded",
        B,
        Prepopulated,
        "-a --delete --exclude=extra.txt --exclude=file1.txt",
    ));
    v.push(sd(
        "basic/filter/delete-excluded-del",
        B,
        Prepopulated,
        "-a --delete-excluded --exclude=extra.txt",
    ));
    v.push(sd(
        "basic/full/delete",
        Tree::Full,
        Prepopulated,
        "-aHAX --delete",
    ));
    v.push(sd(
        "basic/names/delete",
        Tree::Names,
        Prepopulated,
        "-a --delete",
    ));
    v.push(sd("basic/backup", B, Prepopulated, "-a --backup"));
    v.push(
        sd(
            "basic/backup-dir",
            B,
            Prepopulated,
            "-a --backup --backup-dir=../bak --suffix=.old",
        )
        .setup(make_backup_target),
    );
}

fn links(v: &mut Vec<Scenario>) {
    use Tree::Links as L;
    for flags in [
        "-r",
        "-rl",
        "-rL",
        "-rl --copy-unsafe-links",
        "-rl --safe-links",
        "-rL --safe-links",
        "-rlk",
        "-a",
        "-aH",
        "-aL",
        "-alH --copy-unsafe-links",
        "-rlH",
        "-rlt",
        "-a --munge-links",
    ] {
        v.push(sd(
            &format!("links/fresh/{}", slug(flags)),
            L,
            Absent,
            flags,
        ));
    }
    for flags in ["-a", "-aH", "-aK", "-a --safe-links", "-aL"] {
        v.push(sd(
            &format!("links/prepopulated/{}", slug(flags)),
            L,
            Prepopulated,
            flags,
        ));
    }
    v.push(s(
        "links/operand/symlink",
        L,
        Absent,
        &["-a", "src/sl/rel", "dst/"],
    ));
    v.push(s(
        "links/operand/symlink-L",
        L,
        Absent,
        &["-aL", "src/sl/rel", "dst/"],
    ));
    v.push(s(
        "links/operand/dirlink-slash",
        L,
        Absent,
        &["-a", "src/sl/dirlink/", "dst/"],
    ));
    v.push(s(
        "links/operand/dangling-L",
        L,
        Absent,
        &["-aL", "src/sl/dangling", "dst/"],
    ));
    v.push(s(
        "links/operand/hardlinks-H",
        L,
        Absent,
        &["-aH", "src/hl/a1", "src/hl/a2", "dst/"],
    ));
    v.push(sd("links/link-dest", L, Absent, "-a --link-dest=../src"));
    v.push(sd("links/link-dest-H", L, Absent, "-aH --link-dest=../src"));
}

fn metadata(v: &mut Vec<Scenario>) {
    use Tree::Meta as M;
    for flags in [
        "-r",
        "-rp",
        "-rE",
        "-rpE",
        "-rt",
        "-rto",
        "-rtg",
        "-rtog",
        "-rtog --numeric-ids",
        "-rD",
        "-r --devices",
        "-r --specials",
        "-rX",
        "-rA",
        "-rpA",
        "-rlptD",
        "-a",
        "-aX",
        "-aA",
        "-aHAX",
        "-aHAX --numeric-ids",
        "-a --chown=1000:1000",
        "-a --chown=4242",
        "-a --chown=:4242",
        "-a --chmod=ugo=rwX",
        "-a --chmod=D750,F640",
        "-a --chmod=u+s,g-w",
        "-r --chmod=o-r",
        "-aO",
        "-aJ",
        "-a --no-o --no-g",
        "-a --no-p",
        "-rlt --executability",
    ] {
        v.push(sd(
            &format!("metadata/fresh/{}", slug(flags)),
            M,
            Absent,
            flags,
        ));
    }
    for flags in [
        "-a",
        "-aHAX",
        "-rt",
        "-rp",
        "-ro",
        "-rg",
        "-rtE",
        "-a --numeric-ids",
        "-aX",
        "-aA",
    ] {
        v.push(sd(
            &format!("metadata/prepopulated/{}", slug(flags)),
            M,
            Prepopulated,
            flags,
        ));
    }
    // -U preserves atimes: compare them on destination files.
    let at = Mask {
        atimes: true,
        ..Mask::default()
    };
    for flags in ["-rtU", "-aU", "-a --atimes", "-a --open-noatime"] {
        let id = format!("metadata/atimes/{}", slug(flags));
        v.push(sd(&id, Tree::Basic, Absent, flags).mask(at.clone()));
    }
    v.push(
        sd(
            "metadata/atimes/aU-prepopulated",
            Tree::Basic,
            Prepopulated,
            "-aU",
        )
        .mask(at),
    );
    v.push(sd(
        "metadata/basic-prepopulated/rp",
        Tree::Basic,
        Prepopulated,
        "-rp",
    ));
    v.push(sd(
        "metadata/basic-prepopulated/rtog",
        Tree::Basic,
        Prepopulated,
        "-rtog",
    ));
    v.push(sd("metadata/full/aHAX", Tree::Full, Absent, "-aHAX"));
    v.push(sd(
        "metadata/full/aHAX-prepopulated",
        Tree::Full,
        Prepopulated,
        "-aHAX",
    ));
    v.push(sd("metadata/nobody/a", Tree::Basic, Absent, "-a").user(User::Nobody));
    v.push(
        sd(
            "metadata/nobody/a-prepopulated",
            Tree::Basic,
            Prepopulated,
            "-a",
        )
        .user(User::Nobody),
    );
    v.push(sd("metadata/nobody/rp", Tree::Basic, Absent, "-rp").user(User::Nobody));
}

fn quick_check(v: &mut Vec<Scenario>) {
    use Tree::Basic as B;
    for flags in [
        "-a",
        "-ai",
        "-aci",
        "-ai --size-only",
        "-aiI",
        "-aiu",
        "-ai --modify-window=1",
        "-ai --modify-window=2000",
        "-ai --existing",
        "-ai --ignore-existing",
        "-ai --existing --ignore-existing",
        "-ai --max-size=1k",
        "-ai --min-size=1k",
        "-ai --min-size=150 --max-size=2k",
        "-ai --max-size=1.5K",
        "-ai --delete",
        "-ai --delete-before",
        "-ai --delete-after",
        "-ai --delete-delay",
        "-ai --delete --max-delete=1",
        "-ain --delete",
        "-ri",
        "-rti",
        "-rtic",
        "-ai --force",
        "-ai --ignore-times --size-only",
        "-ai -u --inplace",
    ] {
        v.push(sd(
            &format!("quick-check/{}", slug(flags)),
            B,
            Prepopulated,
            flags,
        ));
    }
    v.push(sd("quick-check/nobody/ai", B, Prepopulated, "-ai").user(User::Nobody));
    v.push(
        sd("quick-check/second-run-noop", B, Absent, "-ai").setup(|w| {
            // Destination already an exact copy: nothing must be transferred.
            let _ = std::process::Command::new("cp")
                .arg("-a")
                .arg(w.join("src"))
                .arg(w.join("dst"))
                .status();
        }),
    );
}

/// After stamping, for `-c`: `file1.txt` keeps its content with an mtime
/// 100 s older (sent by the plain quick check, only touched by `-c -t`), and
/// `same_size/s1.txt` (already other content, same size and mtime) joins it.
fn checksum_mtimes(w: &Path) {
    let (s, ns) = tree::mtime_for(b"file1.txt", 42);
    tree::set_mtime(&w.join("dst/file1.txt"), s - 100, ns);
}
/// `-c` where neither side can be read (as nobody): rsync's sums of both are
/// zero, so the pair compares equal and nothing is sent.
fn unreadable_both(w: &Path) {
    tree::chmod(&w.join("src/file1.txt"), 0o000);
    tree::chmod(&w.join("dst/file1.txt"), 0o000);
}
/// `-c`: a destination whose content differs from the source at the same size
/// and mtime in a big file (`large/big.bin`, one byte in the middle) too.
fn checksum_big(w: &Path) {
    let p = w.join("dst/large/big.bin");
    let mut b = std::fs::read(w.join("src/large/big.bin")).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    tree::write(&p, &b);
}

/// `-c/--checksum` (the scan hashes same-sized pairs in parallel): which
/// files are sent, itemize `c`, the time-only updates, `--stats`, `-n`,
/// `--delete`, the options it meets in the quick check, reference
/// directories, symlinks followed, unreadable files.
fn checksum(v: &mut Vec<Scenario>) {
    use Tree::{Basic as B, Large as G, Links as L};
    for flags in [
        "-ac",
        "-aci",
        "-acii",
        "-acv",
        "-acvv",
        "-ac --stats",
        "-aci --delete",
        "-acin --delete",
        "-acn --stats",
        "-rci",
        "-rcti",
        "-aci --size-only",
        "-aciI",
        "-aciI --size-only",
        "-aci -u",
        "-aci --existing",
        "-aci --ignore-existing",
        "-aci --max-size=250",
        "-aci --modify-window=1",
        "-aci --inplace",
        "-aci --no-W",
        "-aci -b",
    ] {
        v.push(
            sd(
                &format!("quick-check/checksum/{}", slug(flags)),
                B,
                Prepopulated,
                flags,
            )
            .after_stamp(checksum_mtimes),
        );
    }
    for flags in ["-aci", "-ac --stats", "-acni"] {
        v.push(
            sd(
                &format!("quick-check/checksum/large/{}", slug(flags)),
                G,
                Prepopulated,
                flags,
            )
            .setup(checksum_big),
        );
    }
    for flags in ["-aciL", "-aci --copy-unsafe-links", "-aci"] {
        v.push(sd(
            &format!("quick-check/checksum/links/{}", slug(flags)),
            L,
            Prepopulated,
            flags,
        ));
    }
    for t in ["link", "compare", "copy"] {
        for flags in ["-aci", "-acv --stats"] {
            let f = format!("{flags} --{t}-dest=../prev");
            v.push(
                sd(
                    &format!("quick-check/checksum/{t}-dest/{}", slug(flags)),
                    B,
                    Absent,
                    &f,
                )
                .setup(make_prev)
                .after_stamp(prev_mtimes),
            );
        }
    }
    v.push(
        sd(
            "quick-check/checksum/nobody/unreadable-src",
            B,
            Prepopulated,
            "-aci",
        )
        .user(User::Nobody)
        .setup(unreadable_file),
    );
    v.push(
        sd(
            "quick-check/checksum/nobody/unreadable-both",
            B,
            Prepopulated,
            "-aci",
        )
        .user(User::Nobody)
        .setup(unreadable_both),
    );
}

fn data_path(v: &mut Vec<Scenario>) {
    use Tree::Large as G;
    for flags in [
        "-a",
        "-aW",
        "-a --no-W",
        "-a --inplace",
        "-a --append",
        "-a --append-verify",
        "-a --partial",
        "-a --partial-dir=.partial",
        "-a --temp-dir=../tmpd",
        "-a --delay-updates",
        "-a --fsync",
        "-a --preallocate",
        "-aS",
        "-aS --inplace",
        "-a --sparse --preallocate",
        "-ac",
    ] {
        for (dname, dest) in [("fresh", Absent), ("prepopulated", Prepopulated)] {
            let mut sc = sd(
                &format!("data-path/{dname}/{}", slug(flags)),
                G,
                dest,
                flags,
            );
            if flags.contains("temp-dir") {
                sc = sc.setup(make_tmpd);
            }
            v.push(sc);
        }
    }
    // Delta statistics: Literal/Matched data depend on the delta algorithm's choices.
    let lm = Norm {
        literal_matched: true,
        ..Norm::default()
    };
    v.push(
        sd(
            "data-path/stats/no-W-prepopulated",
            G,
            Prepopulated,
            "-a --no-W --stats",
        )
        .norm(lm),
    );
    v.push(sd(
        "data-path/stats/W-prepopulated",
        G,
        Prepopulated,
        "-aW --stats",
    ));
    v.push(
        sd(
            "data-path/stats/inplace-prepopulated",
            G,
            Prepopulated,
            "-a --inplace --stats",
        )
        .norm(lm),
    );
}

/// `--no-W` on destinations that hold older versions of the files: the delta
/// path, whose output, itemize lines and trees must match rsync's; the
/// Literal/Matched figures are normalised (they depend on the algorithm) and
/// checked against our own delta in `tests/delta_engine.rs`. (Not with
/// `--temp-dir`: rsync 3.5's receiver fails every `mkstemp` there with EINVAL
/// when it has a basis file, which is not worth imitating.)
fn delta(v: &mut Vec<Scenario>) {
    use Tree::Large as G;
    let lm = Norm {
        literal_matched: true,
        ..Norm::default()
    };
    for flags in [
        "-a --no-W --stats",
        "-ai --no-W",
        "-a --no-W --inplace --stats",
        "-a --no-W -b -i",
        "-a --no-W --delay-updates -i",
        "-a --no-W --partial-dir=.partial --stats",
        "-aS --no-W -i",
    ] {
        v.push(
            sd(&format!("delta/{}", slug(flags)), G, Prepopulated, flags)
                .setup(delta_bases)
                .norm(lm),
        );
    }
}

fn output(v: &mut Vec<Scenario>) {
    use Tree::Basic as B;
    let fmt = "--out-format=%n %i %l %f %L %b %o";
    for flags in [
        "-av",
        "-avv",
        "-aq",
        "-ai",
        "-aii",
        "-a --stats",
        "-ah --stats",
        "-av --stats",
        "-avh",
        "-a --progress",
        "-aP",
        "-av --progress",
        "-avn",
        "-ain",
        "-a -8 -v",
        "-a --info=name",
        "-a --info=stats2",
        "-a --itemize-changes --out-format=%i|%n|%l",
    ] {
        v.push(sd(
            &format!("output/fresh/{}", slug(flags)),
            B,
            Absent,
            flags,
        ));
        v.push(sd(
            &format!("output/prepopulated/{}", slug(flags)),
            B,
            Prepopulated,
            flags,
        ));
    }
    v.push(s(
        "output/fresh/out-format",
        B,
        Absent,
        &["-a", fmt, "src/", "dst/"],
    ));
    v.push(s(
        "output/prepopulated/out-format",
        B,
        Prepopulated,
        &["-a", fmt, "src/", "dst/"],
    ));
    v.push(s(
        "output/prepopulated/out-format-delete",
        B,
        Prepopulated,
        &["-a", "--delete", fmt, "src/", "dst/"],
    ));
    v.push(sd("output/full/av", Tree::Full, Absent, "-av"));
    v.push(sd("output/full/aHAXii", Tree::Full, Absent, "-aHAXii"));
    v.push(sd(
        "output/full/aHAXii-prepopulated",
        Tree::Full,
        Prepopulated,
        "-aHAXii",
    ));
    v.push(sd("output/names/av", Tree::Names, Absent, "-av"));
    v.push(sd("output/names/av8", Tree::Names, Absent, "-av8"));
    v.push(sd("output/names/av-utf8-locale", Tree::Names, Absent, "-av").env("LC_ALL", "C.UTF-8"));
    v.push(
        sd("output/names/av8-utf8-locale", Tree::Names, Absent, "-av8").env("LC_ALL", "C.UTF-8"),
    );
    v.push(sd("output/links/aHi", Tree::Links, Absent, "-aHi"));
    for (id, args) in [
        ("output/list-only/top", vec!["--list-only", "src/"]),
        ("output/list-only/r", vec!["--list-only", "-r", "src/"]),
        ("output/list-only/a", vec!["--list-only", "-a", "src/"]),
        ("output/list-only/no-dest", vec!["-a", "src/"]),
        (
            "output/list-only/with-dest",
            vec!["--list-only", "-a", "src/", "dst/"],
        ),
        (
            "output/list-only/file",
            vec!["--list-only", "src/file1.txt"],
        ),
    ] {
        v.push(s(id, Tree::Full, Absent, &args));
    }
}

// ---- backups and reference directories ----

/// A reference directory `prev` beside `dst`, as an earlier snapshot of the
/// source would be: a copy with one file changed in size, one missing, one
/// with another mode, one with another owner, a symlink to elsewhere, a
/// directory where the source has a file, a directory with another mode.
fn make_prev_tree(w: &Path, tree: Tree) {
    tree::generate(tree, w, "prev", 42);
    let p = w.join("prev");
    tree::write(&p.join("file2.txt"), b"an older, shorter version\n");
    std::fs::remove_file(p.join("dir1/sub/c.txt")).unwrap();
    tree::chmod(&p.join("mode_file"), 0o600);
    tree::lchown(&p.join("file1.txt"), 1000, 1000);
    std::fs::remove_file(p.join("link_rel")).unwrap();
    tree::ln_s("elsewhere", &p.join("link_rel"));
    std::fs::remove_file(p.join("tiny")).unwrap();
    tree::mkdir(&p.join("tiny"));
    tree::chmod(&p.join("dir2"), 0o700);
}
fn make_prev(w: &Path) {
    make_prev_tree(w, Tree::Basic);
}
fn make_prev_links(w: &Path) {
    make_prev_tree(w, Tree::Links);
}
fn make_prev_meta(w: &Path) {
    make_prev_tree(w, Tree::Meta);
}
/// A second reference directory `prev2`: an exact copy of the source except
/// `dir1/b.txt`, which is missing.
fn make_prev2(w: &Path) {
    make_prev(w);
    tree::generate(Tree::Basic, w, "prev2", 42);
    std::fs::remove_file(w.join("prev2/dir1/b.txt")).unwrap();
}
/// After stamping: same data, other mtime (a quick-check miss: the file is
/// sent, itemized against the reference) and a nanosecond-only difference.
fn prev_mtimes(w: &Path) {
    let (s, ns) = tree::mtime_for(b"dir1/a.txt", 42);
    tree::set_mtime(&w.join("prev/dir1/a.txt"), s + 10, ns);
    let (s, ns) = tree::mtime_for(b"same_size/s2.txt", 42);
    tree::set_mtime(
        &w.join("prev/same_size/s2.txt"),
        s,
        (ns + 1) % 1_000_000_000,
    );
}
fn make_file_not_dir(w: &Path) {
    tree::write(&w.join("prevfile"), b"not a directory\n");
}
fn make_backup_file(w: &Path) {
    tree::write(
        &w.join("dst/bk"),
        b"a file where the backup dir should be\n",
    );
}
/// Old backups of the same names exist already (rsync replaces them).
fn make_old_backups(w: &Path) {
    tree::write(&w.join("dst/file2.txt~"), b"an old backup\n");
    tree::mkdir(&w.join("bak/dir1"));
    tree::write(&w.join("bak/dir1/b.txt"), b"an old backup\n");
}
/// A source directory nobody may write to: removing its files fails.
fn readonly_src_subdir(w: &Path) {
    tree::lchown(&w.join("src/dir1/sub"), 0, crate::run::NOBODY);
    tree::chmod(&w.join("src/dir1/sub"), 0o755);
}

fn backup(v: &mut Vec<Scenario>) {
    use Tree::{Basic as B, Links as L, Meta as M};
    // Replaced files, symlinks replaced by files, files by directories and
    // back, with the backup lines of --info=backup and -vv.
    for (tname, tree) in [("basic", B), ("links", L), ("meta", M)] {
        for flags in ["-ai -b --info=backup", "-a -vv -b", "-a -b"] {
            v.push(sd(
                &format!("backup/{tname}/{}", slug(flags)),
                tree,
                Prepopulated,
                flags,
            ));
        }
    }
    for flags in [
        "-ai -b --suffix=.bak --info=backup",
        "-ai -b --suffix=",
        "-ai -b --suffix=a/b",
        "-ai --backup-dir=../bak",
        "-a -vv --backup-dir=../bak",
        "-ai -b --backup-dir=../bak --suffix=.old --info=backup",
        "-ai -b --backup-dir=bk --info=backup",
        "-ai -b --backup-dir=../deep/er/bak --info=backup",
        "-ai -b --backup-dir=../bak/ -vv",
        "-ai -b --inplace --info=backup",
        "-ai -b --backup-dir=../bak --inplace --info=backup",
        "-ai -b --delay-updates --info=backup",
        "-ai -b -n --info=backup",
        "-ai -b --no-backup",
        "-ai -bO --info=backup",
        "-ai -bc --info=backup",
        "-ai -b --stats",
        "-rli -b --info=backup",
    ] {
        v.push(sd(
            &format!("backup/prepopulated/{}", slug(flags)),
            B,
            Prepopulated,
            flags,
        ));
    }
    v.push(sd("backup/fresh/ai_b", B, Absent, "-ai -b --info=backup"));
    v.push(
        sd(
            "backup/existing-bak-dir",
            B,
            Prepopulated,
            "-ai --backup-dir=../bak --info=backup",
        )
        .setup(make_backup_target),
    );
    v.push(
        sd(
            "backup/old-backups-replaced",
            B,
            Prepopulated,
            "-ai -b --info=backup",
        )
        .setup(make_old_backups),
    );
    v.push(
        sd(
            "backup/old-backups-replaced-dir",
            B,
            Prepopulated,
            "-ai --backup-dir=../bak --info=backup",
        )
        .setup(make_old_backups),
    );
    v.push(
        sd(
            "backup/backup-dir-is-a-file",
            B,
            Prepopulated,
            "-ai --backup-dir=bk",
        )
        .setup(make_backup_file),
    );
    v.push(sd(
        "backup/hard-links",
        L,
        Prepopulated,
        "-aiH -b --info=backup",
    ));
    // --remove-source-files: transferred and up-to-date non-directories go.
    for (dname, dest) in [("fresh", Absent), ("prepopulated", Prepopulated)] {
        for flags in [
            "-a --remove-source-files",
            "-ai --remove-source-files --info=remove",
            "-a -vv --remove-source-files",
            "-ai -n --remove-source-files",
        ] {
            v.push(
                sd(
                    &format!("backup/remove-source/{dname}/{}", slug(flags)),
                    B,
                    dest,
                    flags,
                )
                .modifies_src(),
            );
        }
    }
    v.push(
        sd(
            "backup/remove-source/links",
            L,
            Prepopulated,
            "-aiH --remove-source-files --info=remove",
        )
        .modifies_src(),
    );
    v.push(
        sd(
            "backup/remove-source/existing",
            B,
            Prepopulated,
            "-ai --existing --remove-source-files --info=remove",
        )
        .modifies_src(),
    );
    v.push(
        sd(
            "backup/remove-source/with-backup",
            B,
            Prepopulated,
            "-ai -b --remove-source-files --info=remove,backup",
        )
        .modifies_src(),
    );
    v.push(
        sd(
            "backup/remove-source/unwritable-src-dir",
            B,
            Empty,
            "-a --remove-source-files",
        )
        .user(User::Nobody)
        .setup(readonly_src_subdir)
        .modifies_src(),
    );
}

fn refdirs(v: &mut Vec<Scenario>) {
    use Tree::{Basic as B, Links as L, Meta as M};
    for t in ["link", "compare", "copy"] {
        let opt = format!("--{t}-dest=../prev");
        let with = |flags: &str| format!("{flags} {opt}");
        for flags in ["-ai", "-aii", "-av", "-avv", "-a --stats", "-ani"] {
            v.push(
                sd(
                    &format!("refdirs/{t}/fresh/{}", slug(flags)),
                    B,
                    Absent,
                    &with(flags),
                )
                .setup(make_prev)
                .after_stamp(prev_mtimes),
            );
        }
        for flags in ["-aii", "-avv", "-aii -b --info=backup"] {
            v.push(
                sd(
                    &format!("refdirs/{t}/prepopulated/{}", slug(flags)),
                    B,
                    Prepopulated,
                    &with(flags),
                )
                .setup(make_prev)
                .after_stamp(prev_mtimes),
            );
        }
        // Which attributes must match depends on what is preserved.
        for flags in [
            "-rlii",
            "-rltii",
            "-rlpii",
            "-rlptgoDii",
            "-aiic",
            "-aii --size-only",
        ] {
            v.push(
                sd(
                    &format!("refdirs/{t}/attrs/{}", slug(flags)),
                    B,
                    Empty,
                    &with(flags),
                )
                .setup(make_prev)
                .after_stamp(prev_mtimes),
            );
        }
        v.push(
            sd(&format!("refdirs/{t}/links-H"), L, Absent, &with("-aHii"))
                .setup(make_prev_links)
                .after_stamp(prev_mtimes),
        );
        v.push(
            sd(&format!("refdirs/{t}/meta"), M, Absent, &with("-aii"))
                .setup(make_prev_meta)
                .after_stamp(prev_mtimes),
        );
        v.push(
            sd(
                &format!("refdirs/{t}/two-dirs"),
                B,
                Absent,
                &format!("-aii {opt} --{t}-dest=../prev2"),
            )
            .setup(make_prev2)
            .after_stamp(prev_mtimes),
        );
        v.push(
            sd(
                &format!("refdirs/{t}/remove-source"),
                B,
                Absent,
                &with("-aii --remove-source-files --info=remove"),
            )
            .setup(make_prev)
            .after_stamp(prev_mtimes)
            .modifies_src(),
        );
    }
    // The reference is the source itself (every file unchanged).
    v.push(sd(
        "refdirs/link/src-itself",
        L,
        Absent,
        "-aii --link-dest=../src",
    ));
    v.push(
        sd(
            "refdirs/link/trailing-slash",
            B,
            Absent,
            "-ai --link-dest=../prev/",
        )
        .setup(make_prev),
    );
    v.push(sd(
        "refdirs/link/missing-dir",
        B,
        Absent,
        "-ai --link-dest=../nosuch",
    ));
    v.push(sd(
        "refdirs/link/missing-dir-n",
        B,
        Absent,
        "-ain --link-dest=../nosuch",
    ));
    v.push(
        sd(
            "refdirs/link/not-a-dir",
            B,
            Absent,
            "-ai --link-dest=../prevfile",
        )
        .setup(make_file_not_dir),
    );
    v.push(sd(
        "refdirs/conflict",
        B,
        Absent,
        "-a --link-dest=../prev --compare-dest=../prev",
    ));
    let many: Vec<String> = (0..21).map(|i| format!("--link-dest=../p{i}")).collect();
    v.push(sd(
        "refdirs/too-many",
        B,
        Absent,
        &format!("-a {}", many.join(" ")),
    ));
    v.push(
        s(
            "refdirs/link/single-file",
            B,
            Empty,
            &["-aii", "--link-dest=../prev", "src/dir1/a.txt", "dst/"],
        )
        .setup(make_prev),
    );
}

fn bad_input(v: &mut Vec<Scenario>) {
    use Tree::Basic as B;
    v.push(s(
        "bad-input/missing-source/only",
        B,
        Absent,
        &["-a", "nosuch", "dst/"],
    ));
    v.push(s(
        "bad-input/missing-source/among-others",
        B,
        Absent,
        &["-a", "src/file1.txt", "nosuch", "src/dir1", "dst/"],
    ));
    v.push(s(
        "bad-input/missing-source/in-src",
        B,
        Empty,
        &["-a", "src/nosuch", "src/dir2", "dst/"],
    ));
    v.push(
        sd("bad-input/unreadable-file", B, Absent, "-a")
            .user(User::Nobody)
            .setup(unreadable_file),
    );
    v.push(
        sd("bad-input/unreadable-file-v", B, Absent, "-av")
            .user(User::Nobody)
            .setup(unreadable_file),
    );
    v.push(
        sd("bad-input/unreadable-dir", B, Absent, "-a")
            .user(User::Nobody)
            .setup(unreadable_dir),
    );
    v.push(
        sd("bad-input/unreadable-dir-v", B, Absent, "-av")
            .user(User::Nobody)
            .setup(unreadable_dir),
    );
    v.push(
        sd("bad-input/dest-not-writable", B, Empty, "-a")
            .user(User::Nobody)
            .setup(readonly_dst),
    );
    v.push(
        sd("bad-input/dest-subdir-not-writable", B, Prepopulated, "-a")
            .user(User::Nobody)
            .setup(readonly_subdir),
    );
    v.push(sd("bad-input/dest-is-file", B, File, "-a"));
    v.push(s(
        "bad-input/dest-is-file-two-sources",
        B,
        File,
        &["-a", "src/file1.txt", "src/file2.txt", "dst"],
    ));
    v.push(s(
        "bad-input/src-equals-dst",
        B,
        Absent,
        &["-a", "src/", "src/"],
    ));
    v.push(s(
        "bad-input/src-equals-dst-c",
        B,
        Absent,
        &["-ac", "src/", "src"],
    ));
    v.push(sd("bad-input/max-size-x", B, Absent, "-a --max-size=x"));
    v.push(sd("bad-input/min-size-x", B, Absent, "-a --min-size=1q"));
    v.push(sd(
        "bad-input/modify-window-x",
        B,
        Absent,
        "-a --modify-window=x",
    ));
    v.push(sd("bad-input/chmod-bad", B, Absent, "-a --chmod=bad"));
    v.push(sd(
        "bad-input/chown-bad-user",
        B,
        Absent,
        "-a --chown=no_such_user_xyz",
    ));
    v.push(sd(
        "bad-input/unknown-option",
        B,
        Absent,
        "-a --no-such-option",
    ));
    // Usage text on stderr: a single process writes it, compare it in order.
    let ordered = Norm {
        stderr_ordered: true,
        ..Norm::default()
    };
    v.push(s("bad-input/no-args", B, Absent, &[]).norm(ordered));
    v.push(s("bad-input/help", B, Absent, &["--help"]).norm(ordered));
    v.push(s(
        "bad-input/two-remote-less",
        B,
        Absent,
        &["-a", "--delete", "src/"],
    ));
    v.push(sd(
        "bad-input/append-and-W",
        B,
        Prepopulated,
        "-a --append --partial-dir=p --delay-updates",
    ));
    v.push(sd(
        "bad-input/temp-dir-missing",
        B,
        Absent,
        "-a --temp-dir=../nosuch",
    ));
}

/// Every scenario, in group order.
pub fn all() -> Vec<Scenario> {
    let mut v = Vec::new();
    basic(&mut v);
    links(&mut v);
    metadata(&mut v);
    quick_check(&mut v);
    checksum(&mut v);
    data_path(&mut v);
    delta(&mut v);
    output(&mut v);
    bad_input(&mut v);
    crate::filter_scenarios::add(&mut v);
    backup(&mut v);
    refdirs(&mut v);
    v
}
