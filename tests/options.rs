//! The command line, as a spec: each test states one rsync 3.5.0 behaviour that
//! resync's parser reproduces (checked against the real `rsync` when written).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::Command;

use resync::options::{Append, Options, ParseOutcome, parse};

fn argv(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// Parse and expect a transfer to run.
fn ok(args: &[&str]) -> Options {
    match parse(&argv(args)) {
        ParseOutcome::Run(o) => *o,
        ParseOutcome::Exit(c) => panic!("{args:?} exited with {c}"),
    }
}

/// Run the real binary: (exit code, stdout, stderr).
fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_resync"))
        .args(args)
        .output()
        .expect("run resync");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const USAGE_ERR: &str = "resync error: syntax or usage error (code 1) [client=0.1.0]\n";

/// A usage error: exit 1, `first` line then rsync's usage error line.
fn usage_error(args: &[&str], first: &str) {
    let (code, out, err) = cli(args);
    assert_eq!(code, 1, "{args:?}");
    assert_eq!(out, "", "{args:?}");
    assert_eq!(err, format!("{first}\n{USAGE_ERR}"), "{args:?}");
}

// ---- operands --------------------------------------------------------------

#[test]
fn last_operand_is_the_destination() {
    let o = ok(&["a", "b", "c"]);
    assert_eq!(o.sources, argv(&["a", "b"]));
    assert_eq!(o.dest, Some("c".into()));
    assert!(!o.list_only);
}

#[test]
fn a_single_operand_means_list_only() {
    let o = ok(&["src/"]);
    assert_eq!(o.sources, argv(&["src/"]));
    assert_eq!(o.dest, None);
    assert!(o.list_only);
}

#[test]
fn no_operand_prints_help_to_stderr_and_exits_1() {
    let (code, out, err) = cli(&[]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert!(err.starts_with("resync  version"));
    assert!(err.contains("\nUsage: resync [OPTION]... SRC [SRC]... DEST\n"));
    assert!(err.ends_with(USAGE_ERR));
    // Options alone are not operands.
    assert_eq!(cli(&["-av"]).0, 1);
}

#[test]
fn options_and_operands_may_be_mixed() {
    let o = ok(&["a", "-v", "b", "--stats", "c"]);
    assert_eq!(o.sources, argv(&["a", "b"]));
    assert_eq!(o.dest, Some("c".into()));
    assert_eq!(o.verbose, 1);
    assert!(o.stats);
}

#[test]
fn double_dash_ends_options() {
    let o = ok(&["-v", "--", "-n", "--bogus"]);
    assert_eq!(o.sources, argv(&["-n"]));
    assert_eq!(o.dest, Some("--bogus".into()));
    assert!(!o.dry_run);
}

#[test]
fn a_lone_dash_is_an_operand() {
    let o = ok(&["-", "b"]);
    assert_eq!(o.sources, argv(&["-"]));
}

#[test]
fn non_utf8_operands_survive_byte_for_byte() {
    let bad = OsString::from_vec(b"caf\xe9/".to_vec());
    let args = vec![OsString::from("-a"), bad.clone(), OsString::from("d")];
    let ParseOutcome::Run(o) = parse(&args) else {
        panic!("should run")
    };
    assert_eq!(o.sources[0].as_bytes(), bad.as_bytes());
}

#[test]
fn non_utf8_option_values_do_not_panic() {
    let args = vec![
        OsString::from_vec(b"--temp-dir=\xff".to_vec()),
        OsString::from_vec(b"--bogus\xff".to_vec()),
        OsString::from("a"),
        OsString::from("b"),
    ];
    assert!(matches!(parse(&args), ParseOutcome::Exit(1)));
    let args = vec![
        OsString::from_vec(b"-T\xfe".to_vec()),
        OsString::from("a"),
        OsString::from("b"),
    ];
    assert!(matches!(parse(&args), ParseOutcome::Run(_)));
}

// ---- short options ---------------------------------------------------------

#[test]
fn short_options_bundle() {
    let o = ok(&["-nvc", "a", "b"]);
    assert!(o.dry_run && o.checksum);
    assert_eq!(o.verbose, 1);
}

#[test]
fn counted_flags_count_across_bundles_and_argvs() {
    let o = ok(&["-vvv", "-ii", "-v", "-xx", "a", "b"]);
    assert_eq!(o.verbose, 4);
    assert_eq!(o.itemize, 2);
    assert_eq!(o.one_file_system, 2);
    let o = ok(&["--verbose", "-i", "--itemize-changes", "a", "b"]);
    assert_eq!((o.verbose, o.itemize), (1, 2));
}

#[test]
fn value_letter_takes_rest_of_bundle_or_next_argv() {
    // -T is implemented and takes a value like -e and -f do.
    assert_eq!(
        ok(&["-vT/tmp/x", "a", "b"]).temp_dir.as_deref(),
        Some("/tmp/x")
    );
    assert_eq!(
        ok(&["-vT", "/tmp/y", "a", "b"]).temp_dir.as_deref(),
        Some("/tmp/y")
    );
    let o = ok(&["-vT", "-n", "a", "b"]);
    assert_eq!(
        o.temp_dir.as_deref(),
        Some("-n"),
        "the next argv is taken even if it looks like an option"
    );
    assert!(!o.dry_run);
    // popt drops one '=' after a value letter: -T=dir is dir.
    assert_eq!(ok(&["-T=dir", "a", "b"]).temp_dir.as_deref(), Some("dir"));
    // A value letter ends the bundle: "vn" is the value, not more flags.
    let o = ok(&["-Tvn", "a", "b"]);
    assert_eq!(o.temp_dir.as_deref(), Some("vn"));
    assert_eq!(o.verbose, 0);
}

#[test]
fn attached_and_separate_values_of_unsupported_letters_are_consumed() {
    // -M/-B are recognised with their values, then rejected as unsupported.
    for args in [
        &["-avM", "--x", "a", "b"][..],
        &["-M--x", "a", "b"],
        &["-B1024", "a", "b"],
    ] {
        let (code, _, err) = cli(args);
        assert_eq!(code, 1);
        assert!(err.ends_with("is not supported yet\n"), "{err}");
    }
    assert_eq!(
        cli(&["-avM", "--x", "a", "b"]).2,
        "resync: --remote-option is not supported yet\n"
    );
    // -e takes its value the same ways (attached, or the next word).
    let o = ok(&["-ave", "ssh -p 22", "a", "b"]);
    assert_eq!(o.rsh.as_deref(), Some(std::ffi::OsStr::new("ssh -p 22")));
    assert_eq!(o.verbose, 1);
    assert_eq!(
        ok(&["-essh", "a", "b"]).rsh.as_deref(),
        Some(std::ffi::OsStr::new("ssh"))
    );
    assert_eq!(
        cli(&["-B1024", "a", "b"]).2,
        "resync: --block-size is not supported yet\n"
    );
}

#[test]
fn flag_letter_with_equals_is_an_error() {
    usage_error(
        &["-v=3", "a", "b"],
        "resync: -v=3: option does not take an argument",
    );
    usage_error(
        &["-vn=3", "a", "b"],
        "resync: -vn=3: option does not take an argument",
    );
}

#[test]
fn unknown_short_option_names_the_whole_argv() {
    usage_error(&["-Z"], "resync: -Z: unknown option");
    usage_error(&["-vZn", "a", "b"], "resync: -vZn: unknown option");
}

#[test]
fn missing_value_for_a_letter() {
    usage_error(&["a", "-T"], "resync: -T: missing argument");
    usage_error(&["a", "-vT"], "resync: -vT: missing argument");
    usage_error(&["-e"], "resync: -e: missing argument");
}

// ---- long options ------------------------------------------------------------

#[test]
fn long_values_with_equals_or_next_argv() {
    assert_eq!(
        ok(&["--partial-dir=.p", "a", "b"]).partial_dir.as_deref(),
        Some(".p")
    );
    assert_eq!(
        ok(&["--partial-dir", ".q", "a", "b"])
            .partial_dir
            .as_deref(),
        Some(".q")
    );
    assert_eq!(
        ok(&["--out-format=%n%L", "a", "b"]).out_format.as_deref(),
        Some("%n%L")
    );
    // Only the first '=' splits; an empty value is a value.
    assert_eq!(
        ok(&["--out-format=a=b", "x", "y"]).out_format.as_deref(),
        Some("a=b")
    );
    assert_eq!(
        ok(&["--out-format=", "x", "y"]).out_format.as_deref(),
        Some("")
    );
    // A separate value is taken even when it starts with a dash (rsync: --rsh -v).
    assert_eq!(
        ok(&["--temp-dir", "-v", "a", "b"]).temp_dir.as_deref(),
        Some("-v")
    );
}

#[test]
fn log_format_is_the_old_name_of_out_format() {
    assert_eq!(
        ok(&["--log-format=%n", "a", "b"]).out_format.as_deref(),
        Some("%n")
    );
}

#[test]
fn long_options_are_not_abbreviated() {
    // rsync 3.5.0: `rsync --verb` is an unknown option.
    usage_error(&["--verb", "a", "b"], "resync: --verb: unknown option");
    usage_error(&["--recurs", "a", "b"], "resync: --recurs: unknown option");
}

#[test]
fn unknown_long_option_message_matches_rsync() {
    usage_error(&["--bogus"], "resync: --bogus: unknown option");
    usage_error(
        &["--bogus=3", "a", "b"],
        "resync: --bogus=3: unknown option",
    );
}

#[test]
fn flag_given_a_value_is_an_error() {
    usage_error(
        &["--no-p=3"],
        "resync: --no-p=3: option does not take an argument",
    );
    usage_error(
        &["--stats=1", "a", "b"],
        "resync: --stats=1: option does not take an argument",
    );
}

#[test]
fn missing_value_for_a_long_option() {
    usage_error(&["--max-size"], "resync: --max-size: missing argument");
    usage_error(
        &["a", "b", "--partial-dir"],
        "resync: --partial-dir: missing argument",
    );
}

// ---- archive, -P, negations --------------------------------------------------

#[test]
fn archive_is_rlptgod() {
    for args in [&["-a", "x", "y"][..], &["--archive", "x", "y"]] {
        let o = ok(args);
        assert!(o.recursive && o.links && o.perms && o.times);
        assert!(o.group && o.owner && o.devices && o.specials);
        assert!(!o.hard_links && !o.acls && !o.xattrs && !o.atimes);
    }
    let d = ok(&["-rlptgoD", "x", "y"]);
    let a = ok(&["-a", "x", "y"]);
    assert_eq!(format!("{d:?}"), format!("{a:?}"));
}

#[test]
fn negations_turn_off_what_archive_implied() {
    let o = ok(&["-a", "--no-p", "--no-times", "--no-D", "--no-o", "x", "y"]);
    assert!(!o.perms && !o.times && !o.devices && !o.specials && !o.owner);
    assert!(o.recursive && o.links && o.group);
    let o = ok(&["-a", "--no-r", "--no-l", "--no-g", "x", "y"]);
    assert!(!o.recursive && !o.links && !o.group);
    let o = ok(&[
        "-a",
        "--no-recursive",
        "--no-links",
        "--no-group",
        "--no-perms",
        "x",
        "y",
    ]);
    assert!(!o.recursive && !o.links && !o.group && !o.perms);
    // Order matters: a later positive wins again.
    assert!(ok(&["--no-p", "-a", "x", "y"]).perms);
}

#[test]
fn every_listed_negation() {
    let o = ok(&[
        "-vvicHAXSWUOJ8",
        "--no-v",
        "--no-i",
        "--no-c",
        "--no-H",
        "--no-A",
        "--no-X",
        "--no-S",
        "--no-U",
        "--no-O",
        "--no-J",
        "--no-8",
        "x",
        "y",
    ]);
    assert_eq!((o.verbose, o.itemize), (0, 0));
    assert!(!o.checksum && !o.hard_links && !o.acls && !o.xattrs && !o.sparse);
    assert!(!o.atimes && !o.omit_dir_times && !o.omit_link_times && !o.eight_bit_output);
    assert!(o.perms, "-A implied -p and --no-A does not undo it");
    assert_eq!(ok(&["-W", "--no-W", "x", "y"]).whole_file, Some(false));
    assert_eq!(
        ok(&["--no-whole-file", "-W", "x", "y"]).whole_file,
        Some(true)
    );
    assert_eq!(ok(&["x", "y"]).whole_file, None);
    assert_eq!(ok(&["-xx", "--no-x", "x", "y"]).one_file_system, 0);
    assert!(!ok(&["-d", "--no-d", "x", "y"]).dirs);
    assert!(!ok(&["-R", "--no-R", "x", "y"]).relative);
    assert!(!ok(&["--mkpath", "--no-mkpath", "x", "y"]).mkpath);
    assert!(!ok(&["--inplace", "--no-inplace", "x", "y"]).inplace);
    assert!(!ok(&["--partial", "--no-partial", "x", "y"]).partial);
    assert!(!ok(&["--progress", "--no-progress", "x", "y"]).progress);
    assert!(!ok(&["--delay-updates", "--no-delay-updates", "x", "y"]).delay_updates);
    assert!(!ok(&["--numeric-ids", "--no-numeric-ids", "x", "y"]).numeric_ids);
    assert!(!ok(&["--devices", "--no-devices", "x", "y"]).devices);
    assert!(!ok(&["--specials", "--no-specials", "x", "y"]).specials);
}

#[test]
fn implied_dirs_and_inc_recursive_default_on() {
    let o = ok(&["x", "y"]);
    assert!(o.implied_dirs && o.inc_recursive);
    let o = ok(&["--no-implied-dirs", "--no-inc-recursive", "x", "y"]);
    assert!(!o.implied_dirs && !o.inc_recursive);
    assert!(!ok(&["--no-i-d", "--no-i-r", "x", "y"]).inc_recursive);
    let o = ok(&["--no-i-d", "--i-d", "--no-i-r", "--i-r", "x", "y"]);
    assert!(o.implied_dirs && o.inc_recursive);
}

#[test]
fn big_p_is_partial_and_progress() {
    let o = ok(&["-P", "x", "y"]);
    assert!(o.partial && o.progress);
    assert!(!o.progress2);
}

#[test]
fn acls_imply_perms_and_d_means_devices_and_specials() {
    let o = ok(&["-A", "x", "y"]);
    assert!(o.acls && o.perms);
    let o = ok(&["-D", "x", "y"]);
    assert!(o.devices && o.specials);
}

#[test]
fn append_modes() {
    assert_eq!(ok(&["x", "y"]).append, Append::No);
    assert_eq!(ok(&["--append", "x", "y"]).append, Append::Append);
    assert_eq!(ok(&["--append-verify", "x", "y"]).append, Append::Verify);
    assert_eq!(
        ok(&["--append", "--no-append", "x", "y"]).append,
        Append::No
    );
}

#[test]
fn remote_only_options_are_recorded() {
    let o = ok(&["-s", "--blocking-io", "-8", "x", "y"]);
    assert_eq!(o.protect_args, Some(true));
    assert_eq!(o.blocking_io, Some(true));
    assert_eq!(ok(&["--old-args", "--old-args", "x", "y"]).old_args, 2);
    assert_eq!(ok(&["--old-args", "--no-old-args", "x", "y"]).old_args, 0);
    assert!(o.eight_bit_output);
    let o = ok(&["--protect-args", "--no-s", "--no-blocking-io", "x", "y"]);
    assert_eq!((o.protect_args, o.blocking_io), (Some(false), Some(false)));
    assert_eq!(ok(&["--secluded-args", "x", "y"]).protect_args, Some(true));
    assert_eq!(ok(&["x", "y"]).protect_args, None);
}

#[test]
fn secluded_args_conflict_with_old_args() {
    usage_error(
        &["-s", "--old-args", "x", "y"],
        "resync: --secluded-args conflicts with --old-args.",
    );
    usage_error(
        &["--old-args", "-s", "x", "y"],
        "resync: --secluded-args conflicts with --old-args.",
    );
    assert_eq!(ok(&["--old-args", "--no-s", "x", "y"]).old_args, 1);
}

#[test]
fn chown_splits_user_and_group() {
    let o = ok(&["--chown=alice:staff", "x", "y"]);
    assert_eq!(o.chown_user.as_deref(), Some("alice"));
    assert_eq!(o.chown_group.as_deref(), Some("staff"));
    assert_eq!(o.chown.as_deref(), Some("alice:staff"));
    assert!(o.owner && o.group);
    let o = ok(&["--chown=:staff", "x", "y"]);
    assert_eq!(
        (o.chown_user.as_deref(), o.owner, o.group),
        (None, false, true)
    );
    let o = ok(&["--chown=alice", "x", "y"]);
    assert_eq!(
        (o.chown_group.as_deref(), o.owner, o.group),
        (None, true, false)
    );
    // A user-only and a group-only --chown combine, as in rsync.
    let o = ok(&["--chown=:b", "--chown=c", "x", "y"]);
    assert_eq!(o.chown.as_deref(), Some("c:b"));
    usage_error(
        &["--chown=a:b", "--chown=c", "x", "y"],
        "resync: You can only specify a user-affecting --chown once.",
    );
    usage_error(
        &["--chown=:b", "--chown=:c", "x", "y"],
        "resync: You can only specify a group-affecting --chown once.",
    );
}

#[test]
fn chmod_may_repeat() {
    let o = ok(&["--chmod=Du+w,Fgo-w", "--chmod", "a+r", "x", "y"]);
    assert_eq!(o.chmod, vec!["Du+w,Fgo-w".to_string(), "a+r".to_string()]);
}

// ---- human-readable, help, version ---------------------------------------------

#[test]
fn human_readable_levels() {
    assert_eq!(ok(&["x", "y"]).human_readable, 0);
    assert_eq!(ok(&["-h", "x", "y"]).human_readable, 1);
    assert_eq!(ok(&["-hh", "x", "y"]).human_readable, 2);
    let o = ok(&["-h", "--no-h", "x", "y"]);
    assert_eq!((o.human_readable, o.plain_numbers), (0, true));
    assert!(!ok(&["x", "y"]).plain_numbers);
}

#[test]
fn lone_h_is_help_otherwise_human_readable() {
    for args in [
        &["-h"][..],
        &["-hv"],
        &["-hh"],
        &["--help"],
        &["--help", "-v", "x"],
    ] {
        let (code, out, err) = cli(args);
        assert_eq!(code, 0, "{args:?}");
        assert!(out.starts_with("resync  version"), "{args:?}");
        assert!(out.contains("\nOptions\n--verbose, -v            increase verbosity\n"));
        assert_eq!(err, "");
    }
    // With anything else -h is --human-readable (here: no operands, usage error).
    let (code, out, _) = cli(&["-h", "-v"]);
    assert_eq!((code, out.as_str()), (1, ""));
}

#[test]
fn help_marks_unsupported_options() {
    let (_, out, _) = cli(&["--help"]);
    assert!(out.contains("\n--compress, -z           compress file data during the transfer\n"));
    assert!(out.contains("choose the compression algorithm (aka --zc) (unsupported)\n"));
    assert!(out.contains("\n--perms, -p              preserve permissions\n"));
    assert!(out.contains("\n-F                       same as --filter='dir-merge /.rsync-filter'\n                         repeated: --filter='- .rsync-filter'\n"));
}

#[test]
fn version_prints_a_short_block() {
    for args in [&["--version"][..], &["-V"], &["-vV", "x", "y"]] {
        let (code, out, _) = cli(args);
        assert_eq!(code, 0);
        assert!(out.starts_with("resync  version 0.1.0  (rsync-compatible, protocol 32)\n"));
        assert!(out.lines().count() < 10);
    }
    // Unlike --help, --version waits for the whole command line to parse.
    assert_eq!(cli(&["--version", "--bogus"]).0, 1);
}

// ---- output flags ------------------------------------------------------------

#[test]
fn info_progress2_and_friends() {
    let o = ok(&["--info=progress2", "x", "y"]);
    assert!(o.progress2 && !o.progress);
    let o = ok(&["--info=progress2,name0", "x", "y"]);
    assert!(o.progress2);
    assert_eq!(o.info, vec![("PROGRESS".into(), 2), ("NAME".into(), 0)]);
    assert!(ok(&["--info=PROGRESS", "x", "y"]).progress);
    let o = ok(&["-P", "--info=progress0", "x", "y"]);
    assert!(!o.progress && !o.progress2 && o.partial);
    assert!(ok(&["--info=all2", "x", "y"]).progress2);
    assert!(!ok(&["--info=progress2", "--info=none", "x", "y"]).progress2);
    // Levels above 4 are capped, empty items are skipped.
    assert_eq!(
        ok(&["--info=flist9,,", "x", "y"]).info,
        vec![("FLIST".into(), 4)]
    );
    assert_eq!(ok(&["--info=", "x", "y"]).info, vec![]);
}

#[test]
fn info_and_debug_words_are_checked() {
    usage_error(
        &["--info=bogus", "x", "y"],
        "Unknown --info item: \"bogus\"",
    );
    usage_error(
        &["--info=progress2,bogus3", "x", "y"],
        "Unknown --info item: \"bogus\"",
    );
    usage_error(
        &["--debug=bogus", "x", "y"],
        "Unknown --debug item: \"bogus\"",
    );
    ok(&["--debug=FLIST2,del,ALL", "x", "y"]);
    let (code, out, _) = cli(&["--info=help"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("Use OPT or OPT1 for level 1 output"));
    assert!(
        out.contains("\nPROGRESS   Mention 1) per-file progress or 2) total transfer progress\n")
    );
    let (code, out, _) = cli(&["--debug=help"]);
    assert_eq!(code, 0);
    assert!(out.contains("\nNSTR       Debug negotiation strings\n"));
}

#[test]
fn list_only_quiet_stats_and_friends() {
    let o = ok(&["--list-only", "-q", "--stats", "--progress", "x", "y"]);
    assert!(o.list_only && o.quiet && o.stats && o.progress);
    assert_eq!(
        o.dest,
        Some("y".into()),
        "--list-only keeps the destination operand"
    );
}

// ---- selection, links, metadata, data -------------------------------------------

#[test]
fn every_implemented_flag_sets_its_field() {
    let o = ok(&[
        "-rdRlLkKHpEtUOJognXAcIuWS",
        "--existing",
        "--ignore-existing",
        "--copy-unsafe-links",
        "--safe-links",
        "--numeric-ids",
        "--size-only",
        "--inplace",
        "--partial",
        "--delay-updates",
        "--fsync",
        "--preallocate",
        "--mkpath",
        "--devices",
        "--specials",
        "x",
        "y",
    ]);
    assert!(o.recursive && o.dirs && o.relative && o.links && o.copy_links);
    assert!(o.copy_dirlinks && o.keep_dirlinks && o.hard_links && o.perms);
    assert!(o.executability && o.times && o.atimes && o.omit_dir_times);
    assert!(o.omit_link_times && o.owner && o.group && o.dry_run && o.xattrs);
    assert!(o.acls && o.checksum && o.ignore_times && o.update && o.sparse);
    assert_eq!(o.whole_file, Some(true));
    assert!(o.existing && o.ignore_existing && o.copy_unsafe_links && o.safe_links);
    assert!(o.numeric_ids && o.size_only && o.inplace && o.partial);
    assert!(o.delay_updates && o.fsync && o.preallocate && o.mkpath);
    assert!(o.devices && o.specials);
    assert!(ok(&["--ignore-non-existing", "x", "y"]).existing);
}

#[test]
fn double_atimes_also_means_open_noatime() {
    let o = ok(&["-UU", "x", "y"]);
    assert!(o.atimes && o.open_noatime);
    let o = ok(&["-U", "x", "y"]);
    assert!(o.atimes && !o.open_noatime);
    assert!(ok(&["--open-noatime", "x", "y"]).open_noatime);
}

#[test]
fn modify_window_is_a_popt_int() {
    assert_eq!(ok(&["x", "y"]).modify_window, 0);
    assert_eq!(ok(&["--modify-window=2", "x", "y"]).modify_window, 2);
    assert_eq!(ok(&["--modify-window", "-1", "x", "y"]).modify_window, -1);
    assert_eq!(ok(&["-@3", "x", "y"]).modify_window, 3);
    assert_eq!(ok(&["-@", "-2", "x", "y"]).modify_window, -2);
    // strtol base 0, as rsync: hex, octal, leading blanks, plus sign.
    assert_eq!(ok(&["--modify-window=0x10", "x", "y"]).modify_window, 16);
    assert_eq!(ok(&["--modify-window=010", "x", "y"]).modify_window, 8);
    assert_eq!(ok(&["--modify-window= +5", "x", "y"]).modify_window, 5);
    // popt names the argv element that held the value.
    usage_error(
        &["--modify-window=x", "a", "b"],
        "resync: --modify-window=x: invalid numeric value",
    );
    usage_error(
        &["--modify-window", "3x", "a", "b"],
        "resync: 3x: invalid numeric value",
    );
    usage_error(&["-@3x", "a", "b"], "resync: -@3x: invalid numeric value");
    usage_error(
        &["--modify-window=99999999999", "a", "b"],
        "resync: --modify-window=99999999999: number too large or too small",
    );
}

// ---- sizes -------------------------------------------------------------------

#[test]
fn size_suffixes_match_rsync() {
    // Each value below was sent by rsync 3.5.0 to its server as the byte count.
    for (arg, bytes) in [
        ("10", 10),
        ("1.5", 1),
        ("2.999", 2),
        ("1.5K", 1536),
        (".5K", 512),
        ("1.K", 1024),
        ("1KB", 1000),
        ("1kB", 1000),
        ("1kib", 1024),
        ("1KiB-1", 1023),
        ("1K+1", 1025),
        ("1K-1", 1023),
        ("1Kb-1", 999),
        ("1.5KB+1", 1501),
        ("1+1", 2),
        ("1b+1", 2),
        ("1M", 1_048_576),
        ("1mb", 1_000_000),
        ("1MiB", 1_048_576),
        ("1gIB", 1_073_741_824),
        ("1G+1", 1_073_741_825),
        ("1T", 1_099_511_627_776),
        ("1P", 1_125_899_906_842_624),
        ("8191P", 9_222_246_136_947_933_184),
        ("0", 0),
        ("", 0),
        ("K", 0),
    ] {
        let o = ok(&[&format!("--max-size={arg}"), "x", "y"]);
        assert_eq!(o.max_size, Some(bytes), "--max-size={arg}");
        let o = ok(&["--min-size", arg, "x", "y"]);
        assert_eq!(o.min_size, Some(bytes), "--min-size {arg}");
    }
}

#[test]
fn bad_sizes_get_rsyncs_messages() {
    for arg in [
        "x", "1KBx", "1.5.5", "1e3", "1i", "1K+2", "1K+", "+1", "-", "-K", "1,5K", " 1",
    ] {
        usage_error(
            &[&format!("--max-size={arg}"), "a", "b"],
            &format!("resync: --max-size={arg} is invalid"),
        );
    }
    for arg in ["-1", "-2", "-1K", "0-1", "0K-1", "8192P", "99999P"] {
        usage_error(
            &["--max-size", arg, "a", "b"],
            &format!("resync: --max-size={arg} is too large"),
        );
    }
    usage_error(
        &["--min-size=x", "a", "b"],
        "resync: --min-size=x is invalid",
    );
}

// ---- backups and reference directories ------------------------------------------

#[test]
fn backup_suffix_rules_are_rsyncs() {
    usage_error(
        &["-b", "--suffix=a/b", "a", "b"],
        "resync: --suffix cannot contain slashes: a/b",
    );
    usage_error(
        &["-b", "--suffix=", "a", "b"],
        "resync: --suffix cannot be empty without a --backup-dir",
    );
    // Even without -b: the suffix is checked once all options are known.
    usage_error(
        &["--suffix=", "a", "b"],
        "resync: --suffix cannot be empty without a --backup-dir",
    );
}

#[test]
fn reference_dirs_are_one_kind_and_at_most_20() {
    usage_error(
        &["--link-dest=x", "--compare-dest=y", "a", "b"],
        "resync: ERROR: the --compare-dest option conflicts with the --link-dest option",
    );
    usage_error(
        &["--copy-dest=x", "--link-dest=y", "a", "b"],
        "resync: ERROR: the --link-dest option conflicts with the --copy-dest option",
    );
    let many: Vec<String> = (0..21).map(|i| format!("--link-dest=d{i}")).collect();
    let mut args: Vec<&str> = many.iter().map(String::as_str).collect();
    args.extend(["a", "b"]);
    usage_error(
        &args,
        "resync: ERROR: at most 20 --link-dest args may be specified",
    );
}

// ---- unsupported options -----------------------------------------------------------

#[test]
fn unsupported_options_exit_1_naming_the_long_option() {
    for (args, name) in [
        (&["-M--foo", "a", "b"][..], "--remote-option"),
        (&["--zc=zstd", "a", "b"], "--zc"),
        (&["--stop-after=1", "a", "b"], "--stop-after"),
        (&["--super", "a", "b"], "--super"),
    ] {
        let (code, out, err) = cli(args);
        assert_eq!(code, 1, "{args:?}");
        assert_eq!(out, "");
        assert_eq!(
            err,
            format!("resync: {name} is not supported yet\n"),
            "{args:?}"
        );
    }
}

/// With rsync 3.5.0 installed, our help rows are exactly rsync's (apart from
/// the "(unsupported)" marks and resync's own `--gitignore`), so the table
/// lists every option rsync lists.
#[test]
fn help_rows_match_installed_rsync_3_5_0() {
    let Ok(v) = Command::new("rsync").arg("--version").output() else {
        return;
    };
    if !String::from_utf8_lossy(&v.stdout).starts_with("rsync  version 3.5.0 ") {
        return;
    }
    let Ok(h) = Command::new("rsync").arg("--help").output() else {
        return;
    };
    let theirs = String::from_utf8_lossy(&h.stdout);
    let theirs: String = theirs
        .split("\nOptions\n")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .unwrap_or_default()
        .to_string()
        + "\n";
    // resync's own options (marked "resync only") are the only extra rows.
    let ours: String = resync::options::table::option_help_rows()
        .replace(" (unsupported)\n", "\n")
        .lines()
        .filter(|l| !l.contains("resync only"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(ours, theirs);
}

#[test]
fn delete_when_options_follow_rsyncs_rules() {
    use resync::options::Delete;
    assert_eq!(ok(&["-r", "--delete", "a", "b"]).delete, Delete::During);
    assert_eq!(
        ok(&["-r", "--delete-excluded", "a", "b"]).delete,
        Delete::During
    );
    assert_eq!(
        ok(&["-r", "--delete-before", "a", "b"]).delete,
        Delete::Before
    );
    assert_eq!(
        ok(&["-r", "--del", "--delete-delay", "a", "b"]).delete,
        Delete::Delay
    );
    assert_eq!(
        ok(&["-r", "--delete-after", "a", "b"]).delete,
        Delete::After
    );
    assert_eq!(ok(&["-r", "a", "b"]).delete, Delete::Off);
    let (code, _, err) = cli(&["-r", "--delete-before", "--delete-after", "a", "b"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("resync: You may not combine multiple --delete-WHEN options.\n"));
    let (code, _, err) = cli(&["--delete", "a", "b"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(
            "resync: --delete does not work without --recursive (-r) or --dirs (-d).\n"
        )
    );
    let (code, _, err) = cli(&["-r", "--max-delete=x", "a", "b"]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn files_from_implies_relative_and_dirs_but_not_archives_recursion() {
    let o = ok(&["-a", "--files-from=list", "a", "b"]);
    assert!(o.relative && o.dirs && !o.recursive);
    let o = ok(&["-a", "-r", "--files-from=list", "a", "b"]);
    assert!(o.recursive);
    let o = ok(&["--files-from=list", "--no-R", "--no-d", "a", "b"]);
    assert!(!o.relative && !o.dirs);
}

#[test]
fn filter_options_keep_their_order() {
    use resync::filter::FilterArg;
    let o = ok(&[
        "--exclude=*.o",
        "-f+ x",
        "-F",
        "--include-from=f",
        "-FF",
        "a",
        "b",
    ]);
    assert_eq!(
        o.filters,
        vec![
            FilterArg::Exclude("*.o".into()),
            FilterArg::Rule("+ x".into()),
            FilterArg::Rule(": /.rsync-filter".into()),
            FilterArg::IncludeFrom("f".into()),
            FilterArg::Rule("- .rsync-filter".into()),
        ]
    );
}
