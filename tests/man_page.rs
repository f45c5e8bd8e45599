//! `man/resync.1` is generated from the option table; this test keeps the
//! committed file in step with it. Regenerate with
//! `UPDATE_MAN=1 cargo test --test man_page`.

use std::path::Path;

#[test]
fn man_page_matches_option_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("man/resync.1");
    let expected = resync::options::table::man_page();
    if std::env::var_os("UPDATE_MAN").is_some() {
        std::fs::write(&path, &expected).expect("write man/resync.1");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "man/resync.1 is out of date with src/options/table.rs; \
         run `UPDATE_MAN=1 cargo test --test man_page` and commit the result"
    );
}

#[test]
fn man_page_lists_every_help_row() {
    let man = resync::options::table::man_page();
    for opt in resync::options::table::TABLE.iter().filter(|o| o.listed()) {
        let label = opt.display().replace('-', "\\-");
        assert!(man.contains(&label), "man page lacks {label}");
    }
}
