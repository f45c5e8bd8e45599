//! Scenarios for issue 3's selection and deletion: filter rules (`filter/...`),
//! the `--delete` family (`delete/...`) and `--files-from` (`files-from/...`).
//!
//! The trees are the `Basic` tree plus what [`filter_src`] adds: files that
//! common rules pick out (`*.o`, `*.c`, backups, VCS directories, `core`),
//! nested `.rsync-filter` and `.cvsignore` files, deep directories and a
//! directory with nothing but excluded files (for `-m`). [`dest_extras`] adds to
//! the destination what deletion must handle: extraneous files and
//! directories, excluded and protected files, and a directory holding only
//! excluded (or perishable-excluded) entries.

use std::path::Path;

use crate::run::{Dest, Scenario};
use crate::tree::{self, Tree};

/// Files every filter scenario's source gets.
fn src_files(root: &Path) {
    let w = |rel: &str, data: &[u8]| tree::write(&root.join(rel), data);
    w("proj/main.c", b"int main(void) { return 0; }\n");
    w("proj/main.o", b"\x7fELF object\n");
    w("proj/util.c", b"void util(void) {}\n");
    w("proj/util.o", b"\x7fELF util\n");
    w("proj/README.txt", b"readme\n");
    w("proj/notes~", b"editor backup\n");
    w("proj/core", b"core dump\n");
    w("proj/build/out.o", b"out\n");
    w("proj/build/log.txt", b"build log\n");
    w("proj/build/keep.c", b"kept\n");
    w("proj/.git/config", b"[core]\n");
    w("proj/.git/HEAD", b"ref: refs/heads/main\n");
    w("proj/CVS/Entries", b"/main.c/1.1///\n");
    w("proj/.rsync-filter", b"- *.txt\n+ build/\n- build/*.o\n");
    w("docs/a.md", b"# a\n");
    w("docs/b.md", b"# b\n");
    w("docs/old/x.md", b"# x\n");
    w("docs/.cvsignore", b"b.md\n");
    w("deep/l1/l2/l3/file.c", b"deep c\n");
    w("deep/l1/l2/l3/file.h", b"deep h\n");
    w("deep/l1/other.c", b"other\n");
    w("deep/.rsync-filter", b"- l3/\n");
    w("objs/only.o", b"only objects here\n");
    w("objs/sub/more.o", b"more\n");
    w("top.bak", b"top backup\n");
    w("keep.bak", b"kept backup\n");
    w("a1.md", b"a1\n");
    w(".rsync-filter", b"- *.bak\n+ keep.bak\n");
}

/// Source additions (the source side of every scenario here).
pub fn filter_src(w: &Path) {
    src_files(&w.join("src"));
}

/// Source additions plus destination entries for deletion to deal with.
pub fn dest_extras(w: &Path) {
    filter_src(w);
    let d = w.join("dst");
    // The destination has a copy of part of the source, so not all is new.
    src_files(&d);
    let x = |rel: &str, data: &[u8]| tree::write(&d.join(rel), data);
    x("extra.o", b"excluded extra\n");
    x("extra.txt", b"plain extra\n");
    x("proj/old.c", b"removed from source\n");
    x("proj/keep.me", b"protected\n");
    x("proj/build/stale.o", b"stale\n");
    x("gone_dir/x.o", b"excluded inside an extraneous dir\n");
    x("gone_dir/y.txt", b"extraneous\n");
    x("gone2/a", b"a\n");
    x("gone2/b/c", b"c\n");
    x("docs/z.md", b"z\n");
    x("deep/l1/l2/l3/gone.c", b"under an excluded dir\n");
    x("objs/sub/stale.o", b"stale object\n");
    tree::ln_s("nowhere", &d.join("extra_link"));
}

/// A rule file and include file in the work dir for `--exclude-from` etc.
pub fn rule_files(w: &Path) {
    dest_extras(w);
    tree::write(
        &w.join("rules"),
        b"# comment\n- *.o\n; another comment\n\n- /top.bak\n",
    );
    tree::write(&w.join("incl"), b"*.c\n*/\n");
    tree::write(&w.join("merge"), b"- *.md\ninclude keep.bak\n");
    tree::write(&w.join("rules0"), b"*.o\0*.md\0");
}

/// The `--files-from` lists.
pub fn files_lists(w: &Path) {
    dest_extras(w);
    tree::write(
        &w.join("files.txt"),
        b"proj/main.c\n/docs/\n# comment\n\ndeep/l1\n../keep.bak\nproj/build/../util.c\n",
    );
    tree::write(&w.join("files0.txt"), b"proj/util.c\0docs/a.md\0");
    tree::write(&w.join("missing.txt"), b"proj/main.c\nno/such/file\n");
    tree::write(
        &w.join("anchored.txt"),
        b"proj/./build/keep.c\ndocs/./old/\ndeep/l1/./other.c\n.\n",
    );
}

/// Flags for rule-selection scenarios (each run with `-ai`).
const FILTERS: &[&str] = &[
    "--exclude=*.o",
    "--exclude=*.o --exclude=build/",
    "--include=*.c --include=*/ --exclude=*",
    "-m --include=*.c --include=*/ --exclude=*",
    "--exclude=/top.bak",
    "--exclude=proj/build",
    "--exclude=**/l2",
    "--exclude=deep/**",
    "--exclude=deep/***",
    "--exclude=l*/",
    "-f-_*.[oa]",
    "-f-!_*/",
    "--exclude=[a-c]*",
    "--exclude=?.md",
    "--exclude=*.txt -f! --exclude=*.o",
    "--exclude=*.txt -f!",
    "-f-/_**/src/top.bak",
    "-C",
    "-C --include=core",
    "-F",
    "-FF",
    "-F -F --exclude=*.o",
    "-f:_.rsync-filter",
    "-f:n_.rsync-filter",
    "-f:e_.rsync-filter",
    "-f:-_.cvsignore",
    "-f:C",
    "-f.e_merge",
    "--exclude-from=rules",
    "--include-from=incl --exclude=*",
    "-0 --exclude-from=rules0",
    "-fH_*.c",
    "-fS_proj/*.o -f-_*.o",
    "-f+_*.c -f-_*.o -f-_*.txt",
    "--exclude=*/ --include=proj",
    "--include=proj --exclude=/*",
    "-f-p_*.o",
    "--filter=exclude_*.md",
    "-f-,_*.md",
    "-m",
    "-m --exclude=*.o",
    "-r --exclude=proj --exclude=.rsync-filter",
    "-vv -F",
    "-vv -C --exclude=*.txt",
    "--debug=FILTER --include=*/ --include=*.c --exclude=*",
];

/// Flags for deletion scenarios (each run with `-ai`, into a destination with
/// extras).
const DELETES: &[&str] = &[
    "--delete",
    "--del",
    "--delete-before",
    "--delete-during",
    "--delete-delay",
    "--delete-after",
    "--delete --exclude=*.o",
    "--delete-excluded --exclude=*.o",
    "--delete --delete-excluded -F",
    "--delete -f-p_*.o",
    "--delete -fP_keep.me",
    "--delete -fP_*.me -fR_proj/**",
    "--delete -f-r_*.txt",
    "--delete -fH_*.c",
    "--delete -fS_extra.o -f-_*.o",
    "--delete --max-delete=0",
    "--delete --max-delete=3",
    "--delete-after --max-delete=2",
    "--delete -n",
    "--delete-before -n",
    "--delete -F",
    "--delete-after -F",
    "--delete -C",
    "--delete-excluded -C",
    "--delete --force",
    "--force",
    "--delete -v",
    "--delete --stats",
    "--delete --existing",
    "--delete --ignore-existing",
    "--delete -m --include=*.c --include=*/ --exclude=*",
    "--delete --exclude=gone_dir",
    "--delete -f:_.rsync-filter",
    "--delete-delay --exclude=*.txt",
    "--delete -y",
    "--delete -vv --exclude=*.o -fP_keep.me",
    "--delete-after -vv -F",
    "--delete-after -yy",
];

/// rsync's `-ai FLAGS src/ dst/` split into arguments.
fn args(flags: &str) -> Vec<String> {
    let mut a = vec!["-ai".to_string()];
    a.extend(
        flags
            .split(' ')
            .filter(|f| !f.is_empty())
            .map(str::to_string),
    );
    a
}

/// A slug for a flag string.
fn slug(flags: &str) -> String {
    flags
        .split(' ')
        .filter(|f| !f.is_empty())
        .map(|f| f.trim_start_matches('-').replace('/', "%"))
        .collect::<Vec<_>>()
        .join("_")
}

fn sc(id: String, dest: Dest, a: &[String], setup: crate::run::Hook) -> Scenario {
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    Scenario::new(id, Tree::Basic, dest, &refs).setup(setup)
}

/// Every scenario of the `filter`, `delete` and `files-from` groups.
pub fn add(v: &mut Vec<Scenario>) {
    for f in FILTERS {
        let mut a = args(f);
        a.extend(["src/".into(), "dst/".into()]);
        v.push(sc(
            format!("filter/fresh/{}", slug(f)),
            Dest::Absent,
            &a,
            rule_files,
        ));
        v.push(sc(
            format!("filter/existing/{}", slug(f)),
            Dest::Prepopulated,
            &a,
            rule_files,
        ));
    }
    // -C also takes $CVSIGNORE (word-split, not perishable).
    let mut a = args("-C --delete");
    a.extend(["src/".into(), "dst/".into()]);
    v.push(
        sc(
            "filter/cvsignore-env".into(),
            Dest::Prepopulated,
            &a,
            rule_files,
        )
        .env("CVSIGNORE", "*.md  README*\ta1*"),
    );
    // Rules on a directory operand (names start with `src/`) and on -R paths.
    for f in [
        "--exclude=/src/proj",
        "--exclude=src/docs",
        "--exclude=/docs",
    ] {
        let mut a = args(f);
        a.extend(["src".into(), "dst/".into()]);
        v.push(sc(
            format!("filter/operand-dir/{}", slug(f)),
            Dest::Absent,
            &a,
            rule_files,
        ));
    }
    for f in ["-R --exclude=/src/proj/*.o", "-R --exclude=docs"] {
        let mut a = args(f);
        a.extend(["src/proj".into(), "src/docs".into(), "dst/".into()]);
        v.push(sc(
            format!("filter/relative/{}", slug(f)),
            Dest::Absent,
            &a,
            rule_files,
        ));
    }
    // A rule excluding the operand itself.
    let mut a = args("--exclude=top.bak --exclude=proj");
    a.extend([
        "src/top.bak".into(),
        "src/proj".into(),
        "src/a1.md".into(),
        "dst/".into(),
    ]);
    v.push(sc(
        "filter/operands-excluded".into(),
        Dest::Empty,
        &a,
        rule_files,
    ));

    for f in DELETES {
        let mut a = args(f);
        a.extend(["src/".into(), "dst/".into()]);
        v.push(sc(
            format!("delete/{}", slug(f)),
            Dest::Prepopulated,
            &a,
            dest_extras,
        ));
    }
    // A directory operand: deletion happens inside dst/src only.
    let mut a = args("--delete");
    a.extend(["src".into(), "dst/".into()]);
    v.push(sc("delete/operand-dir".into(), Dest::Empty, &a, nested_dst));
    // -d: deletion in the top directory only.
    let a: Vec<String> = ["-d", "-i", "--delete", "src/", "dst/"]
        .map(String::from)
        .to_vec();
    v.push(sc(
        "delete/dirs-only".into(),
        Dest::Prepopulated,
        &a,
        dest_extras,
    ));
    // A sender I/O error stops deletion unless --ignore-errors.
    for f in ["--delete", "--delete --ignore-errors"] {
        let mut a = args(f);
        a.extend(["src/".into(), "dst/".into()]);
        v.push(
            sc(
                format!("delete/io-error/{}", slug(f)),
                Dest::Prepopulated,
                &a,
                unreadable_src_dir,
            )
            .user(crate::run::User::Nobody),
        );
    }
    // Missing operands.
    for f in [
        "--ignore-missing-args",
        "--delete-missing-args",
        "--delete-missing-args --delete",
    ] {
        let mut a = args(f);
        a.extend(
            [
                "src/nofile",
                "src/extra.txt",
                "src/gone2",
                "src/a1.md",
                "dst/",
            ]
            .map(String::from),
        );
        v.push(sc(
            format!("delete/missing-args/{}", slug(f)),
            Dest::Prepopulated,
            &a,
            dest_extras,
        ));
    }

    // Bad rules and rule files: rsync's message and exit code, and nothing
    // deleted or changed before the error.
    for (name, f) in [
        ("unknown-rule", "--delete -fx_foo"),
        ("invalid-modifier", "--delete -f-z_foo"),
        ("empty-rule", "--delete -f-"),
        ("clear-trailing", "--delete -f!_x"),
        ("merge-modifier", "--delete -f.!_merge"),
        (
            "missing-exclude-from",
            "--delete --exclude-from=no-such-file",
        ),
        (
            "missing-include-from",
            "--delete --include-from=no-such-file",
        ),
        ("missing-merge", "--delete -f._no-such-file"),
        ("missing-dir-merge", "--delete -f:_no-such-file"),
        ("missing-files-from", "--delete --files-from=no-such-file"),
    ] {
        let mut a = args(f);
        a.extend(["src/".into(), "dst/".into()]);
        v.push(sc(
            format!("filter/bad/{name}"),
            Dest::Prepopulated,
            &a,
            rule_files,
        ));
    }
    let mut a = args("--delete --exclude-from=rules");
    a.extend(["src/".into(), "dst/".into()]);
    v.push(
        sc(
            "filter/bad/unreadable-exclude-from".into(),
            Dest::Prepopulated,
            &a,
            unreadable_rules,
        )
        .user(crate::run::User::Nobody),
    );
    let mut a = args("--delete -F");
    a.extend(["src/".into(), "dst/".into()]);
    v.push(
        sc(
            "filter/bad/unreadable-dir-merge".into(),
            Dest::Prepopulated,
            &a,
            unreadable_rsync_filter,
        )
        .user(crate::run::User::Nobody),
    );

    for (name, f) in [
        ("plain", "--files-from=files.txt"),
        ("r", "-r --files-from=files.txt"),
        ("no-R", "--no-R --files-from=files.txt"),
        ("from0", "-0 --files-from=files0.txt"),
        ("missing-entry", "--files-from=missing.txt"),
        ("anchored", "--files-from=anchored.txt"),
        ("anchored-r", "-r --files-from=anchored.txt"),
        ("delete", "-r --delete --files-from=files.txt"),
        ("exclude", "-r --exclude=*.c --files-from=files.txt"),
    ] {
        let mut a = args(f);
        a.extend(["src".into(), "dst/".into()]);
        v.push(sc(
            format!("files-from/{name}"),
            Dest::Prepopulated,
            &a,
            files_lists,
        ));
    }
}

/// The destination holds a previous copy of `src` (for a `src` operand).
fn nested_dst(w: &Path) {
    filter_src(w);
    src_files(&w.join("dst/src"));
    tree::write(&w.join("dst/src/extra.txt"), b"extra\n");
    tree::write(&w.join("dst/outside.txt"), b"not under dst/src\n");
}

/// An unreadable source directory (an I/O error on the sending side).
fn unreadable_src_dir(w: &Path) {
    dest_extras(w);
    tree::chown_r(w, crate::run::NOBODY, crate::run::NOBODY);
    tree::chmod(&w.join("src/docs"), 0o000);
}

/// A rule file the (unprivileged) user cannot read.
fn unreadable_rules(w: &Path) {
    rule_files(w);
    tree::chown_r(w, crate::run::NOBODY, crate::run::NOBODY);
    tree::chmod(&w.join("rules"), 0o000);
}

/// A per-directory merge file the user cannot read (rsync skips it).
fn unreadable_rsync_filter(w: &Path) {
    rule_files(w);
    tree::chown_r(w, crate::run::NOBODY, crate::run::NOBODY);
    tree::chmod(&w.join("src/proj/.rsync-filter"), 0o000);
}
