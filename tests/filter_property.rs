//! Property test: random filter rules over random trees select exactly what
//! rsync selects.
//!
//! Each case builds a random tree (random names, depths and kinds, and
//! sometimes `.rsync-filter` files), draws 1–6 random rules from rsync's
//! syntax (includes, excludes, negation, anchoring, `*`, `**`, `***`, `?`,
//! classes, directory-only patterns, protect/risk/hide/show, perishable,
//! per-directory merges, clears), then compares with the real rsync:
//! `-r --list-only` (the sender's selection) and `-ai --delete -n` into a
//! destination with extra entries (the receiver's side: what deletion may
//! touch). Cases are seeded; a failure names its seed, and
//! `FILTER_PROP_SEED=N` reruns one case. Needs `rsync` on PATH.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::Command;

/// splitmix64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const NAMES: &[&str] = &[
    "a", "b", "ab", "abc", "x.o", "y.c", "z.txt", "d1", "d2", "sub", "core", ".hid", "a b", "[x]",
    "k~", "lib.a", "D", "foo", "foo.o",
];

const PATTERNS: &[&str] = &[
    "*.o",
    "*.c",
    "a*",
    "?b",
    "[a-c]*",
    "[!a]*",
    "d1",
    "d1/",
    "/d1",
    "/d2/",
    "d1/*",
    "d1/**",
    "d1/***",
    "**/x.o",
    "**/sub/**",
    "sub/*.c",
    "/*/y.c",
    "*/",
    "*",
    "**",
    "d*/**/z.txt",
    "sub",
    "/sub",
    "foo",
    "\\[x]",
    "a b",
    "*~",
    ".hid",
    "**.o",
    "d?/a*",
];

const PREFIXES: &[&str] = &[
    "- ", "+ ", "-! ", "+! ", "-p ", "P ", "R ", "H ", "S ", "exclude ", "include ", "-r ", "-s ",
    "protect ", "hide ",
];

/// A random tree under `root`; returns the relative paths of its directories.
fn tree(rng: &mut Rng, root: &Path, depth: u32, rel: &str, dirs: &mut Vec<String>) {
    fs::create_dir_all(root).unwrap();
    dirs.push(rel.to_string());
    let n = 1 + rng.below(6);
    for _ in 0..n {
        let name = rng.pick(NAMES);
        let p = root.join(name);
        if p.exists() {
            continue;
        }
        let child = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        if depth > 0 && rng.chance(35) {
            tree(rng, &p, depth - 1, &child, dirs);
        } else {
            fs::write(&p, child.as_bytes()).unwrap();
        }
    }
}

fn rule(rng: &mut Rng) -> String {
    if rng.chance(4) {
        return "!".to_string();
    }
    format!("{}{}", rng.pick(PREFIXES), rng.pick(PATTERNS))
}

fn run(prog: &OsString, args: &[OsString], cwd: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(prog)
        .args(args)
        .current_dir(cwd)
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .env_remove("CVSIGNORE")
        .output()
        .expect("run program");
    let clean = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .filter(|l| {
                !l.starts_with("sent ") && !l.starts_with("total size") && !l.contains("error")
            })
            .map(|l| l.replacen("rsync:", "resync:", 1))
            .collect::<Vec<_>>()
            .join("\n")
    };
    (out.status.code(), clean(&out.stdout), clean(&out.stderr))
}

/// One case: build the trees, run both programs both ways, compare.
fn case(seed: u64) -> Result<(), String> {
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let mut dirs = Vec::new();
    tree(&mut rng, &w.join("src"), 3, "", &mut dirs);
    let mut extra_dirs = Vec::new();
    tree(&mut rng, &w.join("dst"), 2, "", &mut extra_dirs);
    let mut args: Vec<OsString> = Vec::new();
    for _ in 0..1 + rng.below(6) {
        args.push(format!("--filter={}", rule(&mut rng)).into());
    }
    if rng.chance(30) {
        // Per-directory rules, on both sides.
        for side in ["src", "dst"] {
            for d in &dirs {
                if rng.chance(40) {
                    let rules: Vec<String> =
                        (0..1 + rng.below(3)).map(|_| rule(&mut rng)).collect();
                    let dir = w.join(side).join(d);
                    if dir.is_dir() {
                        fs::write(dir.join(".rsync-filter"), rules.join("\n") + "\n").unwrap();
                    }
                }
            }
        }
        let merge = rng.pick(&[
            "-F",
            "--filter=: .rsync-filter",
            "--filter=:n .rsync-filter",
            "-FF",
        ]);
        args.insert(rng.below(args.len() + 1), merge.into());
    }
    if rng.chance(15) {
        args.push("-m".into());
    }
    let rsync: OsString = "rsync".into();
    let resync: OsString = env!("CARGO_BIN_EXE_resync").into();

    let mut list = vec![OsString::from("-r"), "--list-only".into()];
    list.extend(args.iter().cloned());
    list.push("src/".into());
    let a = run(&rsync, &list, w);
    let b = run(&resync, &list, w);
    if a != b {
        return Err(format!(
            "seed {seed}: --list-only differs for {list:?}\nrsync:  {a:?}\nresync: {b:?}"
        ));
    }

    let mut del = vec![OsString::from("-ai"), "-n".into(), "--delete".into()];
    if rng.chance(25) {
        del.push("--delete-excluded".into());
    }
    del.extend(args.iter().cloned());
    del.extend(["src/".into(), "dst/".into()]);
    let a = run(&rsync, &del, w);
    let b = run(&resync, &del, w);
    let sorted = |r: &(Option<i32>, String, String)| {
        let mut l: Vec<&str> = r.1.lines().collect();
        l.sort();
        (r.0, l.join("\n"), r.2.clone())
    };
    if sorted(&a) != sorted(&b) {
        return Err(format!(
            "seed {seed}: -ai -n --delete differs for {del:?}\nrsync:  {a:?}\nresync: {b:?}"
        ));
    }
    Ok(())
}

#[test]
fn random_rules_select_what_rsync_selects() {
    if Command::new("rsync").arg("--version").output().is_err() {
        panic!("rsync is required (the test command installs it)");
    }
    if let Ok(s) = std::env::var("FILTER_PROP_SEED") {
        case(s.parse().unwrap()).unwrap();
        return;
    }
    let cases: u64 = std::env::var("FILTER_PROP_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut failures = Vec::new();
    for seed in 0..cases {
        if let Err(e) = case(seed) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ:\n{}",
        failures.len(),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}
