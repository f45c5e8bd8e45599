//! Differential tests: resync against the real rsync on generated trees.
//!
//! One `#[test]` per scenario group runs the whole group, collects every failure and
//! panics at the end with a readable report. See `compat-tests/README.md`.

mod filter_scenarios;
mod run;
mod scenarios;
mod snapshot;
mod tree;

use std::collections::BTreeSet;
use std::path::PathBuf;

use run::Scenario;

fn manifest_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Scenario ids listed in `known_failures.txt` (one per line, `#` comments).
fn known_failures() -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest_path("compat-tests/known_failures.txt"))
        .unwrap_or_default();
    parse_known_failures(&text)
}

fn parse_known_failures(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// The known-failures list applies when testing the built resync binary. With
/// `COMPAT_CANDIDATE` set (e.g. rsync against itself) every scenario must pass, unless
/// `COMPAT_KNOWN_FAILURES=1` forces the list.
fn use_known_failures() -> bool {
    match std::env::var("COMPAT_KNOWN_FAILURES").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => std::env::var_os("COMPAT_CANDIDATE").is_none(),
    }
}

fn selected(group: &str) -> Vec<Scenario> {
    let only = std::env::var("COMPAT_ONLY").ok();
    scenarios::all()
        .into_iter()
        .filter(|s| s.group() == group)
        .filter(|s| only.as_deref().is_none_or(|o| s.id.contains(o)))
        .collect()
}

/// Run every selected scenario of `group`; panic at the end if any failed unexpectedly,
/// or if a scenario listed in `known_failures.txt` passed.
fn run_group(group: &str) {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the compat tests must run as root (devices, owners, switching to uid 65534)"
    );
    let list = selected(group);
    let known = if use_known_failures() {
        known_failures()
    } else {
        BTreeSet::new()
    };
    let jobs: usize = std::env::var("COMPAT_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(sc) = list.get(i) else { break };
                    let r =
                        std::panic::catch_unwind(|| run::run_scenario(sc)).unwrap_or_else(|p| {
                            let msg = p
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_default();
                            Err(format!("HARNESS PANIC: {msg}"))
                        });
                    results.lock().unwrap().push((i, r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);

    let mut failed_ids = Vec::new();
    let mut unexpected = Vec::new();
    let mut stale = Vec::new();
    for (i, r) in &results {
        let sc = &list[*i];
        match r {
            Err(report) => {
                failed_ids.push(sc.id.clone());
                if !known.contains(&sc.id) {
                    unexpected.push(format!(
                        "=== FAIL {}\n    args: {:?}\n{}\n",
                        sc.id,
                        sc.args,
                        indent(report)
                    ));
                }
            }
            Ok(()) if known.contains(&sc.id) => stale.push(sc.id.clone()),
            Ok(()) => {}
        }
    }
    // Record this run's failures so that known_failures.txt can be regenerated.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compat-failures");
    let _ = std::fs::create_dir_all(&dir);
    let passed: String = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| format!("{}\n", list[*i].id))
        .collect();
    let _ = std::fs::write(dir.join(format!("{group}.passed")), passed);
    let _ = std::fs::write(
        dir.join(format!("{group}.txt")),
        failed_ids
            .iter()
            .map(|s| format!("{s}\n"))
            .collect::<String>(),
    );

    eprintln!(
        "compat group {group}: {} scenarios, {} failed ({} known, {} unexpected), {} known failures now pass",
        results.len(),
        failed_ids.len(),
        failed_ids.len() - unexpected.len(),
        unexpected.len(),
        stale.len()
    );
    if unexpected.is_empty() && stale.is_empty() {
        return;
    }
    let mut msg = String::new();
    for u in &unexpected {
        msg += u;
    }
    if !stale.is_empty() {
        msg += "=== listed in compat-tests/known_failures.txt but now PASS (remove them):\n";
        for s in &stale {
            msg += &format!("    {s}\n");
        }
    }
    eprintln!("{msg}");
    panic!(
        "compat group {group}: {} unexpected failure(s), {} stale known-failure entr(y/ies)",
        unexpected.len(),
        stale.len()
    );
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

#[test]
fn basic() {
    run_group("basic");
}

#[test]
fn links() {
    run_group("links");
}

#[test]
fn metadata() {
    run_group("metadata");
}

#[test]
fn quick_check() {
    run_group("quick-check");
}

#[test]
fn data_path() {
    run_group("data-path");
}

#[test]
fn delta() {
    run_group("delta");
}

#[test]
fn output() {
    run_group("output");
}

#[test]
fn bad_input() {
    run_group("bad-input");
}

#[test]
fn backup() {
    run_group("backup");
}

#[test]
fn refdirs() {
    run_group("refdirs");
}

/// Ids are unique, belong to a group with a test function, and every id in
/// known_failures.txt names an existing scenario.
#[test]
fn filter() {
    run_group("filter");
}

#[test]
fn delete() {
    run_group("delete");
}

#[test]
fn files_from() {
    run_group("files-from");
}

#[test]
fn scenario_ids_are_consistent() {
    let groups = [
        "basic",
        "links",
        "metadata",
        "quick-check",
        "data-path",
        "output",
        "bad-input",
        "filter",
        "delete",
        "files-from",
        "backup",
        "delta",
        "refdirs",
    ];
    let all = scenarios::all();
    let mut seen = BTreeSet::new();
    for s in &all {
        assert!(seen.insert(s.id.clone()), "duplicate scenario id {}", s.id);
        assert!(
            groups.contains(&s.group()),
            "scenario {} has no test function",
            s.id
        );
    }
    assert!(all.len() >= 150, "only {} scenarios", all.len());
    for k in known_failures() {
        assert!(
            seen.contains(&k),
            "known_failures.txt names unknown scenario {k}"
        );
    }
}

#[cfg(test)]
mod comparator;
