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
        (o.gitignore, "--gitignore"),
        (o.trust_mtime, "--trust-mtime"),
    ];
    checks.iter().find(|(set, _)| *set).map(|(_, n)| *n)
}

/// The path of a `--files-from=:PATH` or `HOST:PATH` value (read on the
/// remote side); None for a local file (no `:` before the first `/`, or `-`).
pub fn remote_files_from(f: &[u8]) -> Option<&[u8]> {
    let colon = f.iter().position(|&c| c == b':')?;
    let slash = f.iter().position(|&c| c == b'/').unwrap_or(usize::MAX);
    (colon < slash).then(|| &f[colon + 1..])
}

/// The first option whose wire support (a capability of the handshake) the
/// peer lacks, by its rsync name: an older resync would otherwise drop the
/// fields it does not know how to send or refuse them mid-list.
pub fn missing_cap(o: &Options, caps: u64) -> Option<&'static str> {
    use super::proto::cap;
    let needs: &[(bool, u64, &'static str)] = &[
        (o.hard_links, cap::HARD_LINKS, "--hard-links"),
        (o.xattrs, cap::XATTRS, "--xattrs"),
        (o.acls, cap::ACLS, "--acls"),
        (o.checksum, cap::CHECKSUMS, "--checksum"),
        (o.atimes, cap::ATIMES, "--atimes"),
        (o.relative, cap::RELATIVE, "--relative"),
        (o.progress, cap::PROGRESS, "--progress"),
        (o.progress2, cap::PROGRESS, "--info=progress2"),
        (o.remove_source_files, cap::SUCCESS, "--remove-source-files"),
        (o.files_from.is_some(), cap::FILES_FROM, "--files-from"),
        (
            o.missing_args > 1,
            cap::MISSING_ARGS,
            "--delete-missing-args",
        ),
    ];
    needs
        .iter()
        .find(|(on, bit, _)| *on && caps & bit == 0)
        .map(|(_, _, n)| *n)
}

/// The options for the server's command line, before `.` and the paths.
/// `-from` files are read here and forwarded as rules (the server cannot
/// read the client's files); an unreadable one is an error message.
pub fn server_args(o: &Options, pull: bool) -> Result<Vec<Vec<u8>>, String> {
    let mut a: Vec<Vec<u8>> = vec![b"--server".to_vec()];
    // rsync lists one level of a directory operand when not recursing.
    let dirs = o.dirs || (o.list_only && !o.recursive);
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
        (o.relative, 'R'),
        (dirs && !o.recursive, 'd'),
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
        (o.hard_links, 'H'),
        (o.xattrs, 'X'),
        (o.acls, 'A'),
        (o.checksum, 'c'),
    ] {
        if on {
            flags.push(c);
        }
    }
    for _ in 0..o.one_file_system {
        flags.push('x');
    }
    // The receiver chooses a --fuzzy basis: a pushing client forwards it.
    if !pull {
        for _ in 0..o.fuzzy.min(2) {
            flags.push('y');
        }
    }
    if o.atimes {
        flags.push('U');
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
    if o.list_only {
        long("--list-only");
    }
    match o.missing_args {
        0 => {}
        1 => long("--ignore-missing-args"),
        _ => long("--delete-missing-args"),
    }
    if o.remove_source_files {
        long("--remove-source-files");
    }
    if o.copy_unsafe_links {
        long("--copy-unsafe-links");
    }
    if o.safe_links {
        long("--safe-links");
    }
    if o.copy_dirlinks {
        long("--copy-dirlinks");
    }
    if o.prune_empty_dirs {
        long("--prune-empty-dirs");
    }

    if o.open_noatime {
        long("--open-noatime");
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
    // A pushing server prints the item lines: names with high-bit bytes
    // as they are.
    if o.eight_bit_output {
        long("--8-bit-output");
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
    if let Some(f) = o.files_from.as_deref() {
        // `:PATH` is the server's to read: as a pull's sender, or a push's
        // receiver sending it to our sender. A local list on a pull reaches
        // the server's sender over the connection (`-`).
        let remote = remote_files_from(f.as_bytes());
        match remote {
            Some(p) => a.push(value("--files-from=", p)),
            None if pull => a.push(b"--files-from=-".to_vec()),
            None => {}
        }
        if o.from0 && (pull || remote.is_some()) {
            a.push(b"--from0".to_vec());
        }
    }
    if let Some(f) = &o.out_format {
        a.push(value("--out-format=", f.as_bytes()));
    }
    if let Some(words) = info_words(o) {
        a.push(value("--info=", words.as_bytes()));
    }
    if !pull {
        receiver_args(o, &mut a);
    } else if let Some(pd) = o.partial_dir.as_deref().filter(|d| !d.starts_with('/')) {
        // The receiver's `-p DIR/` rule for a relative --partial-dir reaches
        // the sender with the other rules, as rsync's filter list does: a
        // pull does not send the source's partial files.
        let rule = format!("-p {}/", pd.trim_end_matches('/'));
        a.push(value("--filter=", rule.as_bytes()));
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

/// `--info` words for the server, as the client's options hold them (the
/// server's item lines, deletions and removals follow them too). Progress
/// is the receiver's alone (see [`receiver_args`]): an `all` word that would
/// turn it on is cancelled when the client has it off.
fn info_words(o: &Options) -> Option<String> {
    if o.info.is_empty() {
        return None;
    }
    let mut words: Vec<String> = o
        .info
        .iter()
        .map(|(w, l)| format!("{}{l}", w.to_ascii_lowercase()))
        .collect();
    let sets_progress = o.info.iter().any(|(w, _)| w == "ALL" || w == "PROGRESS");
    if sets_progress {
        let lev = if o.progress2 { 2 } else { u8::from(o.progress) };
        words.push(format!("progress{lev}"));
    }
    Some(words.join(","))
}

/// The options only the receiving side acts on (rsync's `server_options`
/// sends them only when the server receives): backups, reference
/// directories, how files are written, and what the planner applies.
fn receiver_args(o: &Options, a: &mut Vec<Vec<u8>>) {
    let mut long = |s: &str| a.push(s.as_bytes().to_vec());
    // A receiving server prints the progress lines (its data thread knows
    // when a file is in place); the client prints what it sends.
    if o.progress {
        long("--progress");
    }
    if o.progress2 {
        long("--info=progress2");
    }
    for (on, name) in [
        (o.backup, "--backup"),
        (o.inplace, "--inplace"),
        (o.append == Append::Append, "--append"),
        (o.append == Append::Verify, "--append-verify"),
        (o.partial, "--partial"),
        (o.delay_updates, "--delay-updates"),
        (o.fsync, "--fsync"),
        (o.preallocate, "--preallocate"),
        (o.sparse, "--sparse"),
        (o.executability, "--executability"),
        (o.omit_link_times, "--omit-link-times"),
        (o.mkpath, "--mkpath"),
        (o.keep_dirlinks, "--keep-dirlinks"),
        (o.ignore_errors, "--ignore-errors"),
    ] {
        if on {
            long(name);
        }
    }
    if let Some(n) = o.max_size {
        long(&format!("--max-size={n}"));
    }
    if let Some(n) = o.min_size {
        long(&format!("--min-size={n}"));
    }
    if let Some(d) = &o.backup_dir {
        a.push(value("--backup-dir=", d.as_bytes()));
    }
    if let Some(x) = &o.suffix {
        a.push(value("--suffix=", x.as_bytes()));
    }
    if let Some(kind) = o.alt_dest {
        let opt = format!("{}=", kind.option_name());
        for d in &o.basis_dirs {
            a.push(value(&opt, d.as_bytes()));
        }
    }
    if let Some(d) = &o.partial_dir {
        a.push(value("--partial-dir=", d.as_bytes()));
    }
    if let Some(d) = &o.temp_dir {
        a.push(value("--temp-dir=", d.as_bytes()));
    }
    for c in &o.chmod {
        a.push(value("--chmod=", c.as_bytes()));
    }
    if let Some(c) = &o.chown {
        a.push(value("--chown=", c.as_bytes()));
    }
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
        // The sender-side and metadata options travel as letters.
        let o = parse(&["-aHXAcU", "s", "h:d"]);
        let a = server_args(&o, true).unwrap();
        assert_eq!(a[2], b"-rlptogHXAcU".to_vec());
        let mut back: Vec<String> = a
            .iter()
            .map(|w| String::from_utf8_lossy(w).into())
            .collect();
        back.extend([".".into(), "s".into()]);
        let refs: Vec<&str> = back.iter().map(String::as_str).collect();
        let p = parse(&refs);
        assert!(p.sender && p.hard_links && p.xattrs && p.acls && p.checksum && p.atimes);
    }

    #[test]
    fn options_needing_a_capability_the_peer_lacks_are_named() {
        use crate::remote::proto::cap;
        let o = parse(&["-aHc", "s", "h:d"]);
        assert_eq!(missing_cap(&o, 0), Some("--hard-links"));
        assert_eq!(missing_cap(&o, cap::HARD_LINKS), Some("--checksum"));
        assert_eq!(missing_cap(&o, cap::HARD_LINKS | cap::CHECKSUMS), None);
        assert_eq!(missing_cap(&parse(&["-a", "s", "h:d"]), 0), None);
    }

    /// Parse the words as the server would after the remote shell.
    fn server_view(o: &Options) -> Options {
        let mut back: Vec<String> = server_args(o, false)
            .unwrap()
            .iter()
            .map(|w| String::from_utf8_lossy(w).replace('\\', ""))
            .collect();
        back.extend([".".into(), "d".into()]);
        let refs: Vec<&str> = back.iter().map(String::as_str).collect();
        parse(&refs)
    }

    #[test]
    fn receiver_options_reach_the_server_of_a_push_only() {
        let o = parse(&[
            "-a",
            "--backup-dir=../old dir",
            "--suffix=.bak",
            "--link-dest=../prev",
            "--link-dest=/abs",
            "--partial-dir=.part",
            "-T",
            "tmp",
            "--delay-updates",
            "--fsync",
            "--preallocate",
            "-S",
            "--chmod=Du+w,Fo-r",
            "--chown=1:2",
            "-E",
            "-J",
            "--mkpath",
            "-K",
            "--max-size=1k",
            "--min-size=10",
            "--ignore-errors",
            "s/",
            "h:d",
        ]);
        assert!(unsupported(&o).is_none());
        let p = server_view(&o);
        assert!(p.backup && p.delay_updates && p.fsync && p.preallocate && p.sparse);
        assert_eq!(
            p.backup_dir.as_deref(),
            Some(std::ffi::OsStr::new("../old dir"))
        );
        assert_eq!(p.suffix.as_deref(), Some(std::ffi::OsStr::new(".bak")));
        assert_eq!(p.alt_dest, Some(crate::options::AltDest::Link));
        assert_eq!(p.basis_dirs, ["../prev", "/abs"]);
        assert_eq!(p.partial_dir.as_deref(), Some(".part"));
        assert_eq!(p.temp_dir.as_deref(), Some("tmp"));
        assert_eq!(p.chmod, ["Du+w,Fo-r"]);
        assert_eq!(
            (p.chown_user.as_deref(), p.chown_group.as_deref()),
            (Some("1"), Some("2"))
        );
        assert!(p.executability && p.omit_link_times && p.mkpath && p.keep_dirlinks);
        assert_eq!((p.max_size, p.min_size), (Some(1024), Some(10)));
        assert!(p.ignore_errors);
        let q = server_view(&parse(&["-a", "--append-verify", "--inplace", "s/", "h:d"]));
        assert_eq!(q.append, Append::Verify);
        assert!(q.inplace);
        // A pull's server is the sender: none of them go there.
        let pulled = [
            "-a",
            "-b",
            "--backup-dir=x",
            "--link-dest=y",
            "-S",
            "--inplace",
        ];
        let pulled = server_args(&parse(&[&pulled[..], &["h:s/", "d"]].concat()), true).unwrap();
        let plain = server_args(&parse(&["-a", "--inplace", "h:s/", "d"]), true).unwrap();
        assert_eq!(pulled, plain);
        let pd = server_args(&parse(&["-a", "--partial-dir=.p/", "h:s/", "d"]), true).unwrap();
        assert_eq!(pd.last().unwrap(), br"--filter=-p\ .p/");
        let back = parse(&["--server", "--sender", "--filter=-p .p/", ".", "s/"]);
        assert_eq!(back.filters.len(), 1);
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
            unsupported(&parse(&["-a", "--gitignore", "s", "h:d"])),
            Some("--gitignore")
        );
        assert_eq!(
            unsupported(&parse(&["-a", "--trust-mtime", "s", "h:d"])),
            Some("--trust-mtime")
        );
        let e = parse(&["-a8", "s", "h:d"]);
        assert!(unsupported(&e).is_none());
        assert!(
            server_args(&e, false)
                .unwrap()
                .contains(&b"--8-bit-output".to_vec())
        );
        let p = parse(&["-a", "-P", "--info=progress2", "s", "h:d"]);
        assert!(unsupported(&p).is_none());
        assert_eq!(
            missing_cap(
                &p,
                super::super::handshake::CAPS & !super::super::proto::cap::PROGRESS
            ),
            Some("--info=progress2")
        );
        let p = parse(&["-a", "-P", "s", "h:d"]);
        assert_eq!(missing_cap(&p, 0), Some("--progress"));
        assert!(missing_cap(&p, super::super::handshake::CAPS).is_none());
        // --debug is the client's alone, as in rsync (never forwarded).
        let d = parse(&["-a", "--debug=filter", "s", "h:d"]);
        assert!(unsupported(&d).is_none());
        assert!(
            !server_args(&d, false)
                .unwrap()
                .iter()
                .any(|w| w.starts_with(b"--debug"))
        );
        assert!(unsupported(&parse(&["-aHXAcU", "s", "h:d"])).is_none());
        let r = parse(&["-aR", "--no-implied-dirs", "s/./x", "h:d"]);
        assert!(unsupported(&r).is_none());
        assert_eq!(missing_cap(&r, 0), Some("--relative"));
        assert_eq!(server_args(&r, true).unwrap()[2], b"-rRlptog".to_vec());
    }
}
