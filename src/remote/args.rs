//! The transfer options a client forwards on the `--server` command line
//! (rsync's `server_options`), and the options remote transfers do not
//! support yet, refused before connecting.
//!
//! Why forward options: both sides build their part of the transfer from the
//! same options (the sender its scan and sender-side filter rules, the
//! receiver its planner, deletions and receiver-side rules), as rsync's two
//! processes do.

use crate::filter::FilterArg;
use crate::options::{Append, Delete, Options};
use std::os::unix::ffi::OsStrExt;

/// The first option set that remote transfers do not support yet, by its
/// rsync name; None when every option given is supported.
pub fn unsupported(o: &Options) -> Option<&'static str> {
    let checks: &[(bool, &'static str)] = &[
        (o.list_only, "--list-only"),
        (o.progress || o.progress2, "--progress"),
        (!o.info.is_empty(), "--info"),
        (!o.debug.is_empty(), "--debug"),
        (o.relative, "--relative"),
        (o.mkpath, "--mkpath"),
        (o.max_size.is_some(), "--max-size"),
        (o.min_size.is_some(), "--min-size"),
        (o.gitignore, "--gitignore"),
        (o.from0, "--from0"),
        (o.prune_empty_dirs, "--prune-empty-dirs"),
        (o.fuzzy > 0, "--fuzzy"),
        (o.ignore_errors, "--ignore-errors"),
        (o.files_from.is_some(), "--files-from"),
        (o.missing_args > 0, "--ignore-missing-args"),
        (o.copy_unsafe_links, "--copy-unsafe-links"),
        (o.safe_links, "--safe-links"),
        (o.copy_dirlinks, "--copy-dirlinks"),
        (o.keep_dirlinks, "--keep-dirlinks"),
        (o.hard_links, "--hard-links"),
        (o.executability, "--executability"),
        (!o.chmod.is_empty(), "--chmod"),
        (o.atimes, "--atimes"),
        (o.open_noatime, "--open-noatime"),
        (o.omit_link_times, "--omit-link-times"),
        (
            o.chown.is_some() || o.chown_user.is_some() || o.chown_group.is_some(),
            "--chown",
        ),
        (o.xattrs, "--xattrs"),
        (o.acls, "--acls"),
        (o.checksum, "--checksum"),
        (o.sparse, "--sparse"),
        (o.inplace, "--inplace"),
        (o.append != Append::No, "--append"),
        (o.partial || o.partial_dir.is_some(), "--partial"),
        (o.temp_dir.is_some(), "--temp-dir"),
        (o.delay_updates, "--delay-updates"),
        (o.fsync, "--fsync"),
        (o.trust_mtime, "--trust-mtime"),
        (o.preallocate, "--preallocate"),
        (o.backup || o.backup_dir.is_some(), "--backup"),
        (o.alt_dest.is_some(), "--link-dest"),
        (o.remove_source_files, "--remove-source-files"),
        (o.protect_args == Some(true), "--secluded-args"),
        (o.eight_bit_output, "--8-bit-output"),
    ];
    checks.iter().find(|(set, _)| *set).map(|(_, n)| *n)
}

/// The options for the server's command line, before `.` and the paths.
/// `-from` files are read here and forwarded as rules (the server cannot
/// read the client's files); an unreadable one is an error message.
pub fn server_args(o: &Options, pull: bool) -> Result<Vec<Vec<u8>>, String> {
    let mut a: Vec<Vec<u8>> = vec![b"--server".to_vec()];
    if pull {
        a.push(b"--sender".to_vec());
    }
    let mut flags = String::from("-");
    for _ in 0..o.verbose {
        flags.push('v');
    }
    for _ in 0..o.itemize {
        flags.push('i');
    }
    for _ in 0..o.human_readable {
        flags.push('h');
    }
    for (on, c) in [
        (o.quiet, 'q'),
        (o.recursive, 'r'),
        (o.dirs && !o.recursive, 'd'),
        (o.links, 'l'),
        (o.copy_links, 'L'),
        (o.perms, 'p'),
        (o.times, 't'),
        (o.omit_dir_times, 'O'),
        (o.owner, 'o'),
        (o.group, 'g'),
        (o.dry_run, 'n'),
        (o.update, 'u'),
        (o.ignore_times, 'I'),
        (o.cvs_exclude, 'C'),
    ] {
        if on {
            flags.push(c);
        }
    }
    for _ in 0..o.one_file_system {
        flags.push('x');
    }
    if flags.len() > 1 {
        a.push(flags.into_bytes());
    }
    let mut long = |s: &str| a.push(s.as_bytes().to_vec());
    if o.devices {
        long("--devices");
    }
    if o.specials {
        long("--specials");
    }
    if o.numeric_ids {
        long("--numeric-ids");
    }
    if o.existing {
        long("--existing");
    }
    if o.ignore_existing {
        long("--ignore-existing");
    }
    if o.size_only {
        long("--size-only");
    }
    if o.plain_numbers {
        long("--no-h");
    }
    match o.whole_file {
        Some(true) => long("--whole-file"),
        Some(false) => long("--no-whole-file"),
        None => {}
    }
    if !o.inc_recursive {
        long("--no-inc-recursive");
    }
    if !o.implied_dirs {
        long("--no-implied-dirs");
    }
    match o.delete {
        Delete::Off => {}
        Delete::Before => long("--delete-before"),
        Delete::During => long("--delete"),
        Delete::Delay => long("--delete-delay"),
        Delete::After => long("--delete-after"),
    }
    if o.delete_excluded {
        long("--delete-excluded");
    }
    if o.force {
        long("--force");
    }
    if o.timeout > 0 {
        long(&format!("--timeout={}", o.timeout));
    }
    if o.bwlimit > 0 {
        long(&format!("--bwlimit={}", o.bwlimit));
    }
    if let Some(n) = o.max_delete {
        long(&format!("--max-delete={n}"));
    }
    if o.modify_window != 0 {
        long(&format!("--modify-window={}", o.modify_window));
    }
    if let Some(f) = &o.out_format {
        a.push(value("--out-format=", f.as_bytes()));
    }
    for f in &o.filters {
        match f {
            FilterArg::Rule(r) => a.push(value("--filter=", r.as_bytes())),
            FilterArg::Include(p) => a.push(value("--include=", p.as_bytes())),
            FilterArg::Exclude(p) => a.push(value("--exclude=", p.as_bytes())),
            FilterArg::IncludeFrom(file) | FilterArg::ExcludeFrom(file) => {
                let opt = if matches!(f, FilterArg::IncludeFrom(_)) {
                    "--include="
                } else {
                    "--exclude="
                };
                let data = if file == "-" {
                    let mut v = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).map(|_| v)
                } else {
                    std::fs::read(file)
                };
                let data = data.map_err(|e| {
                    format!(
                        "failed to open {} file {}: {}",
                        if opt == "--include=" {
                            "include"
                        } else {
                            "exclude"
                        },
                        file.to_string_lossy(),
                        crate::flist::errno_text(&e)
                    )
                })?;
                for line in data.split(|&c| c == b'\n' || c == b'\r') {
                    if line.is_empty() || line[0] == b'#' || line[0] == b';' {
                        continue;
                    }
                    a.push(value(opt, line));
                }
            }
        }
    }
    Ok(a)
}

/// `--name=VALUE` with the value escaped for the remote shell.
fn value(name: &str, v: &[u8]) -> Vec<u8> {
    let mut out = name.as_bytes().to_vec();
    out.extend_from_slice(&super::rsh::escape_option(v));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        let a: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
        match crate::options::parse(&a) {
            crate::options::ParseOutcome::Run(o) => *o,
            crate::options::ParseOutcome::Exit(c) => panic!("exit {c}"),
        }
    }

    #[test]
    fn archive_and_rules_are_forwarded_and_parse_back() {
        let o = parse(&["-avi", "--delete", "--exclude", "*.o x", "-W", "s/", "h:d"]);
        let a = server_args(&o, false).unwrap();
        let s: Vec<String> = a
            .iter()
            .map(|w| String::from_utf8_lossy(w).into())
            .collect();
        assert_eq!(s[0], "--server");
        assert_eq!(s[1], "-virlptog");
        assert!(s.contains(&"--delete".to_string()), "{s:?}");
        assert!(s.contains(&r"--exclude=\*.o\ x".to_string()), "{s:?}");
        assert!(s.contains(&"--whole-file".to_string()), "{s:?}");
        assert!(unsupported(&o).is_none());
        // What the remote shell makes of the words parses to the same options.
        let mut back: Vec<String> = s.iter().map(|w| w.replace('\\', "")).collect();
        back.extend([".".into(), "d".into()]);
        let refs: Vec<&str> = back.iter().map(String::as_str).collect();
        let p = parse(&refs);
        assert!(p.server && !p.sender);
        assert_eq!((p.verbose, p.itemize), (1, 1));
        assert!(p.recursive && p.links && p.perms && p.times && p.owner && p.group);
        assert!(p.devices && p.specials);
        assert_eq!(p.delete, Delete::During);
        assert_eq!(p.whole_file, Some(true));
        assert_eq!(p.filters.len(), 1);
    }

    #[test]
    fn timeout_and_bwlimit_are_forwarded_and_parse_back() {
        let o = parse(&["-r", "--timeout=9", "--bwlimit=1.5M", "s/", "h:d"]);
        assert_eq!((o.timeout, o.bwlimit), (9, 1536));
        let a = server_args(&o, true).unwrap();
        let s: Vec<String> = a
            .iter()
            .map(|w| String::from_utf8_lossy(w).into())
            .collect();
        assert!(s.contains(&"--timeout=9".to_string()), "{s:?}");
        assert!(s.contains(&"--bwlimit=1536".to_string()), "{s:?}");
        let mut back = s.clone();
        back.extend([".".into(), "s".into()]);
        let refs: Vec<&str> = back.iter().map(String::as_str).collect();
        let p = parse(&refs);
        assert_eq!((p.timeout, p.bwlimit), (9, 1536));
        let o = parse(&[
            "-r",
            "--timeout=9",
            "--no-timeout",
            "--bwlimit=0",
            "s/",
            "h:d",
        ]);
        assert_eq!((o.timeout, o.bwlimit), (0, 0));
        let a = server_args(&o, false).unwrap();
        assert!(
            !a.iter()
                .any(|w| w.starts_with(b"--timeout") || w.starts_with(b"--bwlimit"))
        );
    }

    #[test]
    fn unsupported_options_are_named() {
        assert_eq!(
            unsupported(&parse(&["-aH", "s", "h:d"])),
            Some("--hard-links")
        );
        assert_eq!(
            unsupported(&parse(&["-a", "-c", "s", "h:d"])),
            Some("--checksum")
        );
    }
}
