//! The single table of rsync options (name, short letter, argument, help text,
//! implemented or not) that feeds the parser, `--help` and `man/resync.1`.
//!
//! Rows are in the order of `rsync --help` (3.5.0), with the options rsync accepts
//! but does not list (negations such as `--no-perms`, old aliases such as
//! `--log-format`) interleaved as hidden rows (empty help text). Keeping parser,
//! help and man page on one table is what stops them drifting apart.

use super::parse::{self, State, Stop, Val};
use super::{AltDest, Append};
use crate::filter::FilterArg;

/// Whether an option takes a value, in popt's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// A flag: `--opt=VAL` is an error ("option does not take an argument").
    None,
    /// Takes a value, from `--opt=VAL`, `--opt VAL`, `-xVAL`, `-x=VAL` or `-x VAL`.
    Required,
    /// Takes a value only when attached (`--opt=VAL`); rsync itself has none of
    /// these today, the kind exists so the parser handles popt's full model.
    Optional,
}

/// What the parser does when it meets an option (crate-internal: the engine only
/// ever sees the resulting [`super::Options`]).
#[derive(Clone, Copy)]
pub(crate) enum Act {
    /// Not implemented by resync: the parser rejects it with exit 1.
    Unsupported,
    /// A help-only row (`--no-OPTION`): never matched by the parser.
    Doc,
    /// A flag that cannot fail.
    Set(fn(&mut State)),
    /// A flag whose action may fail or stop the program (`--help`).
    Flag(fn(&mut State) -> Result<(), Stop>),
    /// An option with a value.
    Value(fn(&mut State, &Val) -> Result<(), Stop>),
}

/// One rsync option (or one row of rsync's help).
///
/// `names` are the spellings shown in help and accepted by the parser, long
/// names with their dashes (`"--perms"`), short ones as `"-p"`.
#[derive(Clone, Copy)]
pub struct Opt {
    /// Accepted spellings; the first is the primary long name when there is one.
    pub names: &'static [&'static str],
    /// Whether a value is taken.
    pub arg: ArgKind,
    /// Value placeholder shown in help (`DIR` in `--temp-dir=DIR`).
    pub meta: &'static str,
    /// One-line help as rsync prints it (`\n` starts a continuation line);
    /// empty for options rsync accepts but does not list.
    pub help: &'static str,
    /// Left column override for rows whose label is not derivable from `names`.
    pub label: &'static str,
    /// Whether resync implements it; unimplemented options exit 1 when used.
    pub implemented: bool,
    /// What the parser does with it.
    pub(crate) act: Act,
}

impl Opt {
    /// The long name used in messages (`--compress` for `-z`), or the short one
    /// for options without a long name (`-F`).
    pub fn long_name(&self) -> &'static str {
        self.names
            .iter()
            .copied()
            .find(|n| n.starts_with("--"))
            .or_else(|| self.names.first().copied())
            .unwrap_or(self.label)
    }

    /// The single-letter spelling, if any.
    pub fn short(&self) -> Option<char> {
        self.names
            .iter()
            .find(|n| n.len() == 2 && !n.starts_with("--"))
            .and_then(|n| n.chars().nth(1))
    }

    /// Whether the row appears in `--help` and the man page summary.
    pub fn listed(&self) -> bool {
        !self.help.is_empty()
    }

    /// Left column of the help row, e.g. `--temp-dir=DIR, -T`.
    pub fn display(&self) -> String {
        if !self.label.is_empty() {
            return self.label.to_string();
        }
        let mut s = String::new();
        for (i, n) in self.names.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(n);
            if i == 0 && self.arg != ArgKind::None && n.starts_with("--") {
                s.push('=');
                s.push_str(self.meta);
            }
        }
        s
    }
}

/// An implemented flag.
const fn flag(names: &'static [&'static str], help: &'static str, f: fn(&mut State)) -> Opt {
    Opt {
        names,
        arg: ArgKind::None,
        meta: "",
        help,
        label: "",
        implemented: true,
        act: Act::Set(f),
    }
}

/// A flag whose action can fail (e.g. `-UU`, which would need `--open-noatime`).
const fn flag_r(
    names: &'static [&'static str],
    help: &'static str,
    f: fn(&mut State) -> Result<(), Stop>,
) -> Opt {
    Opt {
        names,
        arg: ArgKind::None,
        meta: "",
        help,
        label: "",
        implemented: true,
        act: Act::Flag(f),
    }
}

/// An implemented option with a value.
const fn value(
    names: &'static [&'static str],
    meta: &'static str,
    help: &'static str,
    f: fn(&mut State, &Val) -> Result<(), Stop>,
) -> Opt {
    Opt {
        names,
        arg: ArgKind::Required,
        meta,
        help,
        label: "",
        implemented: true,
        act: Act::Value(f),
    }
}

/// A recognised flag resync does not implement yet.
const fn todo(names: &'static [&'static str], help: &'static str) -> Opt {
    Opt {
        names,
        arg: ArgKind::None,
        meta: "",
        help,
        label: "",
        implemented: false,
        act: Act::Unsupported,
    }
}

/// A recognised value option resync does not implement yet.
const fn todo_v(names: &'static [&'static str], meta: &'static str, help: &'static str) -> Opt {
    Opt {
        names,
        arg: ArgKind::Required,
        meta,
        help,
        label: "",
        implemented: false,
        act: Act::Unsupported,
    }
}

impl Opt {
    /// Override the help row's left column.
    const fn label(self, label: &'static str) -> Opt {
        Opt { label, ..self }
    }
}

/// A filter argument, kept in command-line order (rsync parses them as it
/// meets them; resync parses the whole list once options are known).
fn filter_arg(s: &mut State, a: FilterArg) -> Result<(), Stop> {
    s.o.filters.push(a);
    Ok(())
}

/// `-a`: `-rlptgoD`.
fn archive(s: &mut State) {
    let o = &mut s.o;
    o.recursive = true;
    o.links = true;
    o.perms = true;
    o.times = true;
    o.group = true;
    o.owner = true;
    o.devices = true;
    o.specials = true;
}

/// `-U`, counted.
fn atimes(s: &mut State) -> Result<(), Stop> {
    s.atimes_count = s.atimes_count.saturating_add(1);
    if s.atimes_count > 1 {
        // rsync: a second -U also turns on --open-noatime.
        s.o.open_noatime = true;
    }
    s.o.atimes = true;
    Ok(())
}

/// Every option rsync 3.5.0 accepts on the client side, in `rsync --help` order.
pub static TABLE: &[Opt] = &[
    flag_r(&["--verbose", "-v"], "increase verbosity", |s| {
        s.o.verbose = s.o.verbose.saturating_add(1);
        Ok(())
    }),
    flag(&["--no-verbose"], "", |s| s.o.verbose = 0),
    flag(&["--no-v"], "", |s| s.o.verbose = 0),
    value(
        &["--info"],
        "FLAGS",
        "fine-grained informational verbosity",
        parse::info,
    ),
    value(
        &["--debug"],
        "FLAGS",
        "fine-grained debug verbosity",
        parse::debug,
    ),
    todo_v(
        &["--stderr"],
        "e|a|c",
        "change stderr output mode (default: errors)",
    ),
    todo(&["--msgs2stderr"], ""),
    todo(&["--no-msgs2stderr"], ""),
    flag(&["--quiet", "-q"], "suppress non-error messages", |s| {
        s.o.quiet = true
    }),
    todo(&["--motd"], ""),
    flag(&["--no-motd"], "suppress daemon-mode MOTD", |s| {
        s.o.daemon.no_motd = true
    }),
    flag(
        &["--checksum", "-c"],
        "skip based on checksum, not mod-time & size",
        |s| s.o.checksum = true,
    ),
    flag(&["--no-checksum"], "", |s| s.o.checksum = false),
    flag(&["--no-c"], "", |s| s.o.checksum = false),
    flag(
        &["--archive", "-a"],
        "archive mode is -rlptgoD (no -A,-X,-U,-N,-H)",
        archive,
    ),
    Opt {
        act: Act::Doc,
        ..todo(&[], "turn off an implied OPTION (e.g. --no-D)")
    }
    .label("--no-OPTION"),
    flag(&["--recursive", "-r"], "recurse into directories", |s| {
        s.o.recursive = true;
        s.r_set = Some(true);
    }),
    flag(&["--no-recursive"], "", |s| {
        s.o.recursive = false;
        s.r_set = Some(false);
    }),
    flag(&["--no-r"], "", |s| {
        s.o.recursive = false;
        s.r_set = Some(false);
    }),
    flag(
        &["--inc-recursive", "--i-r"],
        "enable incremental recursion",
        |s| s.o.inc_recursive = true,
    ),
    flag(
        &["--no-inc-recursive"],
        "disable incremental recursion",
        |s| s.o.inc_recursive = false,
    ),
    flag(&["--no-i-r"], "same as --no-inc-recursive", |s| {
        s.o.inc_recursive = false
    }),
    flag(&["--relative", "-R"], "use relative path names", |s| {
        s.o.relative = true;
        s.rel_set = Some(true);
    }),
    flag(&["--no-relative"], "", |s| {
        s.o.relative = false;
        s.rel_set = Some(false);
    }),
    flag(&["--no-R"], "", |s| {
        s.o.relative = false;
        s.rel_set = Some(false);
    }),
    flag(&["--implied-dirs"], "", |s| s.o.implied_dirs = true),
    flag(
        &["--no-implied-dirs"],
        "don't send implied directories with --relative",
        |s| s.o.implied_dirs = false,
    ),
    flag(&["--i-d"], "", |s| s.o.implied_dirs = true),
    flag(&["--no-i-d"], "", |s| s.o.implied_dirs = false),
    flag(
        &["--backup", "-b"],
        "make backups (see --suffix & --backup-dir)",
        |s| s.o.backup = true,
    ),
    flag(&["--no-backup"], "", |s| s.o.backup = false),
    value(
        &["--backup-dir"],
        "DIR",
        "make backups into hierarchy based in DIR",
        |s, v| {
            s.o.backup_dir = Some(v.value.to_os_string());
            Ok(())
        },
    ),
    value(
        &["--suffix"],
        "SUFFIX",
        "backup suffix (default ~ w/o --backup-dir)",
        |s, v| {
            s.o.suffix = Some(v.value.to_os_string());
            Ok(())
        },
    ),
    flag(
        &["--update", "-u"],
        "skip files that are newer on the receiver",
        |s| s.o.update = true,
    ),
    flag(&["--inplace"], "update destination files in-place", |s| {
        s.o.inplace = true
    }),
    flag(&["--no-inplace"], "", |s| s.o.inplace = false),
    flag(&["--append"], "append data onto shorter files", |s| {
        s.o.append = Append::Append
    }),
    flag(
        &["--append-verify"],
        "--append w/old data in file checksum",
        |s| s.o.append = Append::Verify,
    ),
    flag(&["--no-append"], "", |s| s.o.append = Append::No),
    flag(
        &["--dirs", "-d"],
        "transfer directories without recursing",
        |s| {
            s.o.dirs = true;
            s.dirs_set = Some(true);
        },
    ),
    flag(&["--no-dirs"], "", |s| {
        s.o.dirs = false;
        s.dirs_set = Some(false);
    }),
    flag(&["--no-d"], "", |s| {
        s.o.dirs = false;
        s.dirs_set = Some(false);
    }),
    todo(
        &["--old-dirs"],
        "works like --dirs when talking to old rsync",
    ),
    todo(&["--old-d"], "same as --old-dirs"),
    flag(
        &["--mkpath"],
        "create destination's missing path components",
        |s| s.o.mkpath = true,
    ),
    flag(&["--no-mkpath"], "", |s| s.o.mkpath = false),
    flag(&["--links", "-l"], "copy symlinks as symlinks", |s| {
        s.o.links = true
    }),
    flag(&["--no-links"], "", |s| s.o.links = false),
    flag(&["--no-l"], "", |s| s.o.links = false),
    flag(
        &["--copy-links", "-L"],
        "transform symlink into referent file/directory",
        |s| s.o.copy_links = true,
    ),
    flag(
        &["--copy-unsafe-links"],
        "only \"unsafe\" symlinks are transformed",
        |s| s.o.copy_unsafe_links = true,
    ),
    flag(
        &["--safe-links"],
        "ignore symlinks that point outside the tree",
        |s| s.o.safe_links = true,
    ),
    todo(
        &["--insecure-links"],
        "follow attacker-owned symlinks in operator paths",
    ),
    todo(&["--no-insecure-links"], ""),
    todo_v(
        &["--confine-root"],
        "DIR",
        "refuse operator paths resolving outside DIR",
    ),
    todo(
        &["--munge-links"],
        "munge symlinks to make them safe & unusable",
    ),
    todo(&["--no-munge-links"], ""),
    flag(
        &["--copy-dirlinks", "-k"],
        "transform symlink to directory into referent directory",
        |s| s.o.copy_dirlinks = true,
    ),
    flag(
        &["--keep-dirlinks", "-K"],
        "treat symlinked directory on receiver as directory",
        |s| s.o.keep_dirlinks = true,
    ),
    flag(&["--hard-links", "-H"], "preserve hard links", |s| {
        s.o.hard_links = true
    }),
    flag(&["--no-hard-links"], "", |s| s.o.hard_links = false),
    flag(&["--no-H"], "", |s| s.o.hard_links = false),
    flag(&["--perms", "-p"], "preserve permissions", |s| {
        s.o.perms = true
    }),
    flag(&["--no-perms"], "", |s| s.o.perms = false),
    flag(&["--no-p"], "", |s| s.o.perms = false),
    flag(&["--executability", "-E"], "preserve executability", |s| {
        s.o.executability = true
    }),
    value(
        &["--chmod"],
        "CHMOD",
        "affect file and/or directory permissions",
        |s, v| {
            s.o.chmod.push(v.string());
            Ok(())
        },
    ),
    flag(&["--acls", "-A"], "preserve ACLs (implies --perms)", |s| {
        s.o.acls = true;
        s.o.perms = true;
    }),
    flag(&["--no-acls"], "", |s| s.o.acls = false),
    flag(&["--no-A"], "", |s| s.o.acls = false),
    flag(&["--xattrs", "-X"], "preserve extended attributes", |s| {
        s.o.xattrs = true
    }),
    flag(&["--no-xattrs"], "", |s| s.o.xattrs = false),
    flag(&["--no-X"], "", |s| s.o.xattrs = false),
    flag(
        &["--owner", "-o"],
        "preserve owner (super-user only)",
        |s| s.o.owner = true,
    ),
    flag(&["--no-owner"], "", |s| s.o.owner = false),
    flag(&["--no-o"], "", |s| s.o.owner = false),
    flag(&["--group", "-g"], "preserve group", |s| s.o.group = true),
    flag(&["--no-group"], "", |s| s.o.group = false),
    flag(&["--no-g"], "", |s| s.o.group = false),
    flag(
        &["--devices"],
        "preserve device files (super-user only)",
        |s| s.o.devices = true,
    ),
    flag(&["--no-devices"], "", |s| s.o.devices = false),
    todo(
        &["--copy-devices"],
        "copy device contents as a regular file",
    ),
    todo(
        &["--write-devices"],
        "write to devices as files (implies --inplace)",
    ),
    todo(&["--no-write-devices"], ""),
    flag(&["--specials"], "preserve special files", |s| {
        s.o.specials = true
    }),
    flag(&["--no-specials"], "", |s| s.o.specials = false),
    todo(&["--drop-D"], "receiver refuses to create devices/specials"),
    todo(&["--no-drop-D"], ""),
    flag(&["-D"], "same as --devices --specials", |s| {
        s.o.devices = true;
        s.o.specials = true;
    }),
    flag(&["--no-D"], "", |s| {
        s.o.devices = false;
        s.o.specials = false;
    }),
    flag(&["--times", "-t"], "preserve modification times", |s| {
        s.o.times = true
    }),
    flag(&["--no-times"], "", |s| s.o.times = false),
    flag(&["--no-t"], "", |s| s.o.times = false),
    flag_r(&["--atimes", "-U"], "preserve access (use) times", atimes),
    flag(&["--no-atimes"], "", |s| s.o.atimes = false),
    flag(&["--no-U"], "", |s| s.o.atimes = false),
    flag(
        &["--open-noatime"],
        "avoid changing the atime on opened files",
        |s| s.o.open_noatime = true,
    ),
    flag(&["--no-open-noatime"], "", |s| s.o.open_noatime = false),
    todo(&["--crtimes", "-N"], "preserve create times (newness)"),
    todo(&["--no-crtimes"], ""),
    todo(&["--no-N"], ""),
    flag(
        &["--omit-dir-times", "-O"],
        "omit directories from --times",
        |s| s.o.omit_dir_times = true,
    ),
    flag(&["--no-omit-dir-times"], "", |s| s.o.omit_dir_times = false),
    flag(&["--no-O"], "", |s| s.o.omit_dir_times = false),
    flag(
        &["--omit-link-times", "-J"],
        "omit symlinks from --times",
        |s| s.o.omit_link_times = true,
    ),
    flag(&["--no-omit-link-times"], "", |s| {
        s.o.omit_link_times = false
    }),
    flag(&["--no-J"], "", |s| s.o.omit_link_times = false),
    todo(&["--super"], "receiver attempts super-user activities"),
    todo(&["--no-super"], ""),
    todo(
        &["--fake-super"],
        "store/recover privileged attrs using xattrs",
    ),
    flag(
        &["--sparse", "-S"],
        "turn sequences of nulls into sparse blocks",
        |s| s.o.sparse = true,
    ),
    flag(&["--no-sparse"], "", |s| s.o.sparse = false),
    flag(&["--no-S"], "", |s| s.o.sparse = false),
    flag(
        &["--preallocate"],
        "allocate dest files before writing them",
        |s| s.o.preallocate = true,
    ),
    flag(
        &["--dry-run", "-n"],
        "perform a trial run with no changes made",
        |s| s.o.dry_run = true,
    ),
    flag(
        &["--whole-file", "-W"],
        "copy files whole (w/o delta-xfer algorithm)",
        |s| s.o.whole_file = Some(true),
    ),
    flag(
        &["--no-whole-file", "--no-W"],
        "use the delta-xfer algorithm",
        |s| s.o.whole_file = Some(false),
    ),
    todo_v(
        &["--checksum-choice"],
        "STR",
        "choose the checksum algorithm (aka --cc)",
    ),
    todo_v(&["--cc"], "STR", ""),
    flag(
        &["--one-file-system", "-x"],
        "don't cross filesystem boundaries",
        |s| s.o.one_file_system = s.o.one_file_system.saturating_add(1),
    ),
    flag(&["--no-one-file-system"], "", |s| s.o.one_file_system = 0),
    flag(&["--no-x"], "", |s| s.o.one_file_system = 0),
    todo_v(
        &["--block-size", "-B"],
        "SIZE",
        "force a fixed checksum block-size",
    ),
    value(
        &["--rsh", "-e"],
        "COMMAND",
        "specify the remote shell to use",
        |s, v| {
            s.o.rsh = Some(v.value.to_os_string());
            Ok(())
        },
    ),
    value(
        &["--rsync-path"],
        "PROGRAM",
        "specify the rsync to run on remote machine",
        |s, v| {
            s.o.rsync_path = Some(v.value.to_os_string());
            Ok(())
        },
    ),
    flag(
        &["--existing"],
        "skip creating new files on receiver",
        |s| s.o.existing = true,
    ),
    flag(
        &["--ignore-non-existing"],
        "skip creating new files on receiver",
        |s| s.o.existing = true,
    ),
    flag(
        &["--ignore-existing"],
        "skip updating files that exist on receiver",
        |s| s.o.ignore_existing = true,
    ),
    flag(
        &["--remove-source-files"],
        "sender removes synchronized files (non-directory)",
        |s| s.o.remove_source_files = true,
    ),
    todo(&["--remove-sent-files"], ""),
    flag(&["--del"], "an alias for --delete-during", |s| {
        s.del_during = 1
    }),
    flag(
        &["--delete"],
        "delete extraneous files from dest directories",
        |s| s.del_mode = true,
    ),
    flag(
        &["--delete-before"],
        "receiver deletes before xfer, not during",
        |s| s.del_before = true,
    ),
    flag(
        &["--delete-during"],
        "receiver deletes during the transfer",
        |s| s.del_during = 1,
    ),
    flag(
        &["--delete-delay"],
        "find deletions during, delete after",
        |s| s.del_during = 2,
    ),
    flag(
        &["--delete-after"],
        "receiver deletes after transfer, not during",
        |s| s.del_after = true,
    ),
    flag(
        &["--delete-excluded"],
        "also delete excluded files from dest directories",
        |s| s.o.delete_excluded = true,
    ),
    flag(
        &["--ignore-missing-args"],
        "ignore missing source arguments without error",
        |s| s.o.missing_args = s.o.missing_args.max(1),
    ),
    flag(
        &["--delete-missing-args"],
        "delete missing source arguments from destination",
        |s| s.o.missing_args = 2,
    ),
    flag(
        &["--ignore-errors"],
        "delete even if there are I/O errors",
        |s| s.o.ignore_errors = true,
    ),
    flag(&["--no-ignore-errors"], "", |s| s.o.ignore_errors = false),
    flag(
        &["--force"],
        "force deletion of directories even if not empty",
        |s| s.o.force = true,
    ),
    flag(&["--no-force"], "", |s| s.o.force = false),
    value(
        &["--max-delete"],
        "NUM",
        "don't delete more than NUM files",
        |s, v| {
            s.o.max_delete = Some(parse::int(v)?);
            Ok(())
        },
    ),
    value(
        &["--max-size"],
        "SIZE",
        "don't transfer any file larger than SIZE",
        |s, v| {
            s.o.max_size = Some(parse::size(v, "max-size")?);
            Ok(())
        },
    ),
    value(
        &["--min-size"],
        "SIZE",
        "don't transfer any file smaller than SIZE",
        |s, v| {
            s.o.min_size = Some(parse::size(v, "min-size")?);
            Ok(())
        },
    ),
    todo_v(
        &["--max-alloc"],
        "SIZE",
        "change a limit relating to memory alloc",
    ),
    flag(&["--partial"], "keep partially transferred files", |s| {
        s.o.partial = true
    }),
    flag(&["--no-partial"], "", |s| s.o.partial = false),
    value(
        &["--partial-dir"],
        "DIR",
        "put a partially transferred file into DIR",
        |s, v| {
            s.o.partial_dir = Some(v.string());
            Ok(())
        },
    ),
    flag(
        &["--delay-updates"],
        "put all updated files into place at end",
        |s| s.o.delay_updates = true,
    ),
    flag(&["--no-delay-updates"], "", |s| s.o.delay_updates = false),
    flag(
        &["--prune-empty-dirs", "-m"],
        "prune empty directory chains from file-list",
        |s| s.o.prune_empty_dirs = true,
    ),
    flag(&["--no-prune-empty-dirs"], "", |s| {
        s.o.prune_empty_dirs = false
    }),
    flag(&["--no-m"], "", |s| s.o.prune_empty_dirs = false),
    flag(
        &["--numeric-ids"],
        "don't map uid/gid values by user/group name",
        |s| s.o.numeric_ids = true,
    ),
    flag(&["--no-numeric-ids"], "", |s| s.o.numeric_ids = false),
    todo_v(&["--usermap"], "STRING", "custom username mapping"),
    todo_v(&["--groupmap"], "STRING", "custom groupname mapping"),
    value(
        &["--chown"],
        "USER:GROUP",
        "simple username/groupname mapping",
        parse::chown,
    ),
    value(
        &["--timeout"],
        "SECONDS",
        "set I/O timeout in seconds",
        |s, v| {
            s.o.timeout = parse::int(v)?.max(0) as u64;
            Ok(())
        },
    ),
    flag(&["--no-timeout"], "", |s| s.o.timeout = 0),
    value(
        &["--contimeout"],
        "SECONDS",
        "set daemon connection timeout in seconds",
        |s, v| {
            s.o.daemon.contimeout = parse::int(v)?.max(0) as u64;
            Ok(())
        },
    ),
    flag(&["--no-contimeout"], "", |s| s.o.daemon.contimeout = 0),
    flag(
        &["--ignore-times", "-I"],
        "don't skip files that match size and time",
        |s| s.o.ignore_times = true,
    ),
    flag(&["--size-only"], "skip files that match in size", |s| {
        s.o.size_only = true
    }),
    value(
        &["--modify-window", "-@"],
        "NUM",
        "set the accuracy for mod-time comparisons",
        |s, v| {
            s.o.modify_window = parse::int(v)?;
            Ok(())
        },
    ),
    value(
        &["--temp-dir", "-T"],
        "DIR",
        "create temporary files in directory DIR",
        |s, v| {
            s.o.temp_dir = Some(v.string());
            Ok(())
        },
    ),
    flag(
        &["--fuzzy", "-y"],
        "find similar file for basis if no dest file",
        |s| s.o.fuzzy = s.o.fuzzy.saturating_add(1),
    ),
    flag(&["--no-fuzzy"], "", |s| s.o.fuzzy = 0),
    flag(&["--no-y"], "", |s| s.o.fuzzy = 0),
    value(
        &["--compare-dest"],
        "DIR",
        "also compare destination files relative to DIR",
        |s, v| parse::alt_dest(s, v, AltDest::Compare),
    ),
    value(
        &["--copy-dest"],
        "DIR",
        "... and include copies of unchanged files",
        |s, v| parse::alt_dest(s, v, AltDest::Copy),
    ),
    value(
        &["--link-dest"],
        "DIR",
        "hardlink to files in DIR when unchanged",
        |s, v| parse::alt_dest(s, v, AltDest::Link),
    ),
    flag(
        &["--compress", "-z"],
        "compress file data during the transfer",
        |s| {
            s.o.compress = true;
            s.o.no_compress = false;
        },
    ),
    todo(&["--old-compress"], ""),
    todo(&["--new-compress"], ""),
    flag(&["--no-compress", "--no-z"], "", |s| {
        s.o.compress = false;
        s.o.no_compress = true;
        s.o.compress_level = None;
    }),
    todo_v(
        &["--compress-choice"],
        "STR",
        "choose the compression algorithm (aka --zc)",
    ),
    todo_v(&["--zc"], "STR", ""),
    value(
        &["--compress-level"],
        "NUM",
        "explicitly set compression level (aka --zl)",
        |s, v| {
            s.o.compress_level = Some(parse::int(v)?);
            Ok(())
        },
    ),
    value(&["--zl"], "NUM", "", |s, v| {
        s.o.compress_level = Some(parse::int(v)?);
        Ok(())
    }),
    todo_v(
        &["--compress-threads"],
        "NUM",
        "explicitly set compression threads (aka --zt)",
    ),
    todo_v(&["--zt"], "NUM", ""),
    todo_v(
        &["--skip-compress"],
        "LIST",
        "skip compressing files with suffix in LIST",
    ),
    flag(
        &["--cvs-exclude", "-C"],
        "auto-ignore files in the same way CVS does",
        |s| s.o.cvs_exclude = true,
    ),
    flag(
        &["--gitignore"],
        "exclude files git ignores (.gitignore files; resync only)",
        |s| s.o.gitignore = true,
    ),
    flag(&["--no-gitignore"], "", |s| s.o.gitignore = false),
    value(
        &["--filter", "-f"],
        "RULE",
        "add a file-filtering RULE",
        |s, v| filter_arg(s, FilterArg::Rule(v.value.to_owned())),
    ),
    flag(
        &["-F"],
        "same as --filter='dir-merge /.rsync-filter'\nrepeated: --filter='- .rsync-filter'",
        |s| {
            s.f_count = s.f_count.saturating_add(1);
            let rule = match s.f_count {
                1 => ": /.rsync-filter",
                2 => "- .rsync-filter",
                _ => return,
            };
            s.o.filters.push(FilterArg::Rule(rule.into()));
        },
    ),
    value(
        &["--exclude"],
        "PATTERN",
        "exclude files matching PATTERN",
        |s, v| filter_arg(s, FilterArg::Exclude(v.value.to_owned())),
    ),
    value(
        &["--exclude-from"],
        "FILE",
        "read exclude patterns from FILE",
        |s, v| filter_arg(s, FilterArg::ExcludeFrom(v.value.to_owned())),
    ),
    value(
        &["--include"],
        "PATTERN",
        "don't exclude files matching PATTERN",
        |s, v| filter_arg(s, FilterArg::Include(v.value.to_owned())),
    ),
    value(
        &["--include-from"],
        "FILE",
        "read include patterns from FILE",
        |s, v| filter_arg(s, FilterArg::IncludeFrom(v.value.to_owned())),
    ),
    value(
        &["--files-from"],
        "FILE",
        "read list of source-file names from FILE",
        |s, v| {
            s.o.files_from = Some(v.value.to_owned());
            Ok(())
        },
    ),
    flag(
        &["--from0", "-0"],
        "all *-from/filter files are delimited by 0s",
        |s| s.o.from0 = true,
    ),
    flag(&["--no-from0"], "", |s| s.o.from0 = false),
    flag(
        &["--old-args"],
        "disable the modern argument-protection idiom",
        |s| s.o.old_args = s.o.old_args.saturating_add(1),
    ),
    flag(&["--no-old-args"], "", |s| s.o.old_args = 0),
    flag(
        &["--secluded-args", "-s"],
        "use the protocol to safely send the arguments",
        |s| s.o.protect_args = Some(true),
    ),
    flag(&["--no-secluded-args"], "", |s| {
        s.o.protect_args = Some(false)
    }),
    flag(&["--protect-args"], "", |s| s.o.protect_args = Some(true)),
    flag(&["--no-protect-args"], "", |s| {
        s.o.protect_args = Some(false)
    }),
    flag(&["--no-s"], "", |s| s.o.protect_args = Some(false)),
    todo(&["--trust-sender"], "trust the remote sender's file list"),
    todo_v(
        &["--copy-as"],
        "USER[:GROUP]",
        "specify user & optional group for the copy",
    ),
    value(
        &["--address"],
        "ADDRESS",
        "bind address for outgoing socket to daemon",
        |s, v| {
            s.o.daemon.address = Some(v.string());
            Ok(())
        },
    ),
    value(
        &["--port"],
        "PORT",
        "specify double-colon alternate port number",
        |s, v| {
            let n = parse::int(v)?;
            let p = u16::try_from(n).map_err(|_| {
                Stop::usage(format!(
                    "{}: invalid port number",
                    v.written.to_string_lossy()
                ))
            })?;
            s.o.daemon.port = Some(p);
            Ok(())
        },
    ),
    value(
        &["--ca-file"],
        "FILE",
        "verify the daemon's TLS cert with FILE (resync only)",
        |s, v| {
            s.o.daemon.ca_file = Some(v.value.to_os_string());
            Ok(())
        },
    ),
    value(
        &["--tls-cert"],
        "FILE",
        "client TLS certificate for the daemon (resync only)",
        |s, v| {
            s.o.daemon.tls_cert = Some(v.value.to_os_string());
            Ok(())
        },
    ),
    value(
        &["--tls-key"],
        "FILE",
        "private key of --tls-cert (resync only)",
        |s, v| {
            s.o.daemon.tls_key = Some(v.value.to_os_string());
            Ok(())
        },
    ),
    flag(
        &["--plain-tcp"],
        "talk to the daemon without TLS (resync only)",
        |s| s.o.daemon.plain_tcp = true,
    ),
    todo_v(&["--sockopts"], "OPTIONS", "specify custom TCP options"),
    flag(
        &["--blocking-io"],
        "use blocking I/O for the remote shell",
        |s| s.o.blocking_io = Some(true),
    ),
    flag(&["--no-blocking-io"], "", |s| s.o.blocking_io = Some(false)),
    todo_v(
        &["--outbuf"],
        "N|L|B",
        "set out buffering to None, Line, or Block",
    ),
    flag(&["--stats"], "give some file-transfer stats", |s| {
        s.o.stats = true
    }),
    flag(
        &["--8-bit-output", "-8"],
        "leave high-bit chars unescaped in output",
        |s| s.o.eight_bit_output = true,
    ),
    flag(&["--no-8-bit-output"], "", |s| s.o.eight_bit_output = false),
    flag(&["--no-8"], "", |s| s.o.eight_bit_output = false),
    flag(
        &["--human-readable", "-h"],
        "output numbers in a human-readable format",
        |s| s.human = s.human.saturating_add(1),
    ),
    flag(&["--no-human-readable"], "", |s| s.human = 0),
    flag(&["--no-h"], "", |s| s.human = 0),
    flag(&["--progress"], "show progress during transfer", |s| {
        s.o.progress = true
    }),
    flag(&["--no-progress"], "", |s| s.o.progress = false),
    flag(&["-P"], "same as --partial --progress", |s| {
        s.o.partial = true;
        s.o.progress = true;
    }),
    flag(
        &["--itemize-changes", "-i"],
        "output a change-summary for all updates",
        |s| s.o.itemize = s.o.itemize.saturating_add(1),
    ),
    flag(&["--no-itemize-changes"], "", |s| s.o.itemize = 0),
    flag(&["--no-i"], "", |s| s.o.itemize = 0),
    todo_v(
        &["--remote-option", "-M"],
        "OPT",
        "send OPTION to the remote side only",
    ),
    value(
        &["--out-format"],
        "FORMAT",
        "output updates using the specified FORMAT",
        |s, v| {
            s.o.out_format = Some(v.string());
            Ok(())
        },
    ),
    value(&["--log-format"], "FORMAT", "", |s, v| {
        s.o.out_format = Some(v.string());
        Ok(())
    }),
    todo_v(
        &["--log-file"],
        "FILE",
        "log what we're doing to the specified FILE",
    ),
    todo_v(
        &["--log-file-format"],
        "FMT",
        "log updates using the specified FMT",
    ),
    value(
        &["--password-file"],
        "FILE",
        "read daemon-access password from FILE",
        |s, v| {
            s.o.daemon.password_file = Some(v.value.to_os_string());
            Ok(())
        },
    ),
    todo_v(
        &["--early-input"],
        "FILE",
        "use FILE for daemon's early exec input",
    ),
    flag(
        &["--list-only"],
        "list the files instead of copying them",
        |s| s.o.list_only = true,
    ),
    value(
        &["--bwlimit"],
        "RATE",
        "limit socket I/O bandwidth",
        |s, v| {
            s.o.bwlimit = parse::bwlimit(v)?;
            Ok(())
        },
    ),
    flag(&["--no-bwlimit"], "", |s| s.o.bwlimit = 0),
    todo_v(
        &["--stop-after"],
        "MINS",
        "Stop rsync after MINS minutes have elapsed",
    ),
    todo_v(&["--time-limit"], "MINS", ""),
    todo_v(
        &["--stop-at"],
        "y-m-dTh:m",
        "Stop rsync at the specified point in time",
    ),
    flag(&["--fsync"], "fsync every written file", |s| {
        s.o.fsync = true
    }),
    value(
        &["--manifest-dir"],
        "DIR",
        "keep rescan manifests in DIR (resync only)",
        |s, v| {
            s.o.manifest_dir = Some(v.value.to_os_string());
            Ok(())
        },
    ),
    flag(
        &["--no-manifest"],
        "neither read nor write a rescan manifest (resync only)",
        |s| s.o.no_manifest = true,
    ),
    flag(
        &["--trust-mtime"],
        "skip stats under unchanged source dirs (unsafe; resync only)",
        |s| s.o.trust_mtime = true,
    ),
    todo_v(&["--write-batch"], "FILE", "write a batched update to FILE"),
    todo_v(
        &["--only-write-batch"],
        "FILE",
        "like --write-batch but w/o updating dest",
    ),
    todo_v(&["--read-batch"], "FILE", "read a batched update from FILE"),
    todo_v(
        &["--protocol"],
        "NUM",
        "force an older protocol version to be used",
    ),
    todo_v(
        &["--iconv"],
        "CONVERT_SPEC",
        "request charset conversion of filenames",
    ),
    todo(&["--no-iconv"], ""),
    todo_v(
        &["--checksum-seed"],
        "NUM",
        "set block/file checksum seed (advanced)",
    ),
    todo(&["--ipv4", "-4"], "prefer IPv4"),
    todo(&["--ipv6", "-6"], "prefer IPv6"),
    todo(&["--qsort"], ""),
    flag(&["--server"], "", |s| s.o.server = true),
    flag(&["--sender"], "", |s| s.o.sender = true),
    flag(&["--daemon"], "", |s| s.o.daemon.daemon = true),
    value(&["--config"], "FILE", "", |s, v| {
        s.o.daemon.config = Some(v.value.to_os_string());
        Ok(())
    }),
    todo_v(&["--dparam"], "OVERRIDE", ""),
    flag(&["--detach"], "", |s| s.o.daemon.no_detach = false),
    flag(&["--no-detach"], "", |s| s.o.daemon.no_detach = true),
    flag_r(
        &["--version", "-V"],
        "print the version + other info and exit",
        |s| {
            s.version = true;
            Ok(())
        },
    ),
    flag_r(
        &["--help"],
        "show this help (* -h is help only on its own)",
        |_| Err(Stop::Help),
    )
    .label("--help, -h (*)"),
];

/// resync's version for `--version`, `--help` and the man page.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Marker appended to the help of options resync recognises but rejects, so
/// `--help` tells users what works without leaving rsync's layout.
const UNSUPPORTED_MARK: &str = " (unsupported)";

/// First line of `--version` and `--help`, shaped like rsync's.
fn version_line() -> String {
    format!("resync  version {VERSION}  (rsync-compatible, protocol 32)\n")
}

/// `resync --version` output: short, rsync-shaped.
pub fn version_text() -> String {
    format!(
        "{}\
A fast, rsync-compatible file copier for local disks.\n\
\n\
resync comes with ABSOLUTELY NO WARRANTY.  This is free software, and you\n\
are welcome to redistribute it under certain conditions.  See the GNU\n\
General Public Licence (version 3 or later) for details.\n",
        version_line()
    )
}

/// The option rows of `--help`, generated from [`TABLE`] in rsync's layout
/// (left column padded to 24, continuation lines indented by 25).
pub fn option_help_rows() -> String {
    let mut s = String::new();
    for opt in TABLE.iter().filter(|o| o.listed()) {
        let mark = if opt.implemented || matches!(opt.act, Act::Doc) {
            ""
        } else {
            UNSUPPORTED_MARK
        };
        let mut lines = opt.help.lines().peekable();
        let mut first = true;
        while let Some(line) = lines.next() {
            let tail = if lines.peek().is_none() { mark } else { "" };
            if first {
                s.push_str(&format!("{:<24} {line}{tail}\n", opt.display()));
                first = false;
            } else {
                s.push_str(&format!("{:25}{line}{tail}\n", ""));
            }
        }
    }
    s
}

/// `resync --help` (also printed to stderr when no operand is given).
pub fn help_text() -> String {
    format!(
        "{}\
\n\
resync is a fast, rsync-compatible file copier for local transfers.  It takes\n\
rsync's options; those marked (unsupported) are recognised but rejected.\n\
\n\
Usage: resync [OPTION]... SRC [SRC]... DEST\n\
\x20 or   resync [OPTION]... SRC\n\
The second form lists the files instead of copying them (like --list-only).\n\
\n\
Options\n\
{}\
\n\
Please see the resync(1) manpage for full documentation.\n",
        version_line(),
        option_help_rows()
    )
}

/// Escape text for roff: backslashes, hyphens (so they stay ASCII minus signs
/// for copy/paste), and a leading control character.
fn roff(text: &str) -> String {
    let s = text.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

/// `man/resync.1`, generated from [`TABLE`]; `tests/man_page.rs` checks the
/// committed file is up to date.
pub fn man_page() -> String {
    let mut m = String::new();
    m.push_str(&format!(
        ".\\\" Generated from src/options/table.rs; do not edit.\n\
.\\\" Regenerate with: UPDATE_MAN=1 cargo test --test man_page\n\
.TH RESYNC 1 \"\" \"resync {VERSION}\" \"User Commands\"\n\
.nh\n"
    ));
    m.push_str(
        ".SH NAME\n\
resync \\- a fast, rsync\\-compatible file copier\n\
.SH SYNOPSIS\n\
.B resync\n\
[\\fIOPTION\\fR]... \\fISRC\\fR [\\fISRC\\fR]... \\fIDEST\\fR\n\
.br\n\
.B resync\n\
[\\fIOPTION\\fR]... \\fISRC\\fR\n\
.SH DESCRIPTION\n\
.B resync\n\
copies files like\n\
.BR rsync (1)\n\
on local disks and takes the same command line.\n\
With a single \\fISRC\\fR and no \\fIDEST\\fR it lists the files instead of\n\
copying them, as \\fB\\-\\-list\\-only\\fR does.\n\
.PP\n\
Short options may be bundled (\\fB\\-avz\\fR); a letter that takes a value\n\
uses the rest of its bundle or the next argument (\\fB\\-e\\ ssh\\fR,\n\
\\fB\\-essh\\fR).\n\
Long options take values as \\fB\\-\\-opt=VAL\\fR or \\fB\\-\\-opt\\ VAL\\fR and\n\
are never abbreviated.\n\
Options and operands may be mixed; \\fB\\-\\-\\fR ends the options.\n\
.PP\n\
Every rsync option is recognised.\n\
Options marked \\fInot supported yet\\fR make resync exit with status 1\n\
instead of being silently ignored.\n\
.PP\n\
An operand \\fI[USER@]HOST:PATH\\fR names a remote side, as in rsync:\n\
resync starts \\fBresync \\-\\-server\\fR on \\fIHOST\\fR through the remote\n\
shell (\\fB\\-e\\fR, else \\fBRSYNC_RSH\\fR, else \\fBssh\\fR; the remote program is\n\
\\fB\\-\\-rsync\\-path\\fR, default \\fBresync\\fR) and runs the transfer\n\
over resync's own protocol (push or pull; delta transfer by default).\n\
Daemon operands (\\fIHOST::MODULE\\fR, \\fBrsync://\\fR, \\fBresync://\\fR)\n\
connect to \\fBresync \\-\\-daemon\\fR over TLS 1.3 (port 8873 by default).\n\
Options a remote transfer does not support yet make resync exit with status 4.\n\
.SH OPTIONS\n",
    );
    for opt in TABLE.iter().filter(|o| o.listed()) {
        m.push_str(".TP\n");
        m.push_str(&format!("\\fB{}\\fR\n", roff(&opt.display())));
        let mut first = true;
        for line in opt.help.lines() {
            if !first {
                m.push_str(".br\n");
            }
            m.push_str(&roff(line));
            m.push('\n');
            first = false;
        }
        if !opt.implemented && !matches!(opt.act, Act::Doc) {
            m.push_str(".br\n\\fINot supported yet.\\fR\n");
        }
    }
    m.push_str(".SS \"Other accepted spellings\"\n");
    m.push_str(
        "rsync also accepts these options without listing them; so does resync.\n\
Those marked * are not supported yet.\n\
.PP\n",
    );
    let hidden: Vec<String> = TABLE
        .iter()
        .filter(|o| !o.listed())
        .flat_map(|o| {
            o.names.iter().map(move |n| {
                let star = if o.implemented { "" } else { "*" };
                format!("\\fB{}\\fR{star}", roff(n))
            })
        })
        .collect();
    m.push_str(&hidden.join(",\n"));
    m.push('\n');
    m.push_str(
        ".SH GITIGNORE\n\
\\fB\\-\\-gitignore\\fR (not an rsync option) excludes what git would ignore: the\n\
\\fI.gitignore\\fR file of every directory of the transfer, those of its parent\n\
directories up to the repository root, and the repository's\n\
\\fI.git/info/exclude\\fR, with git's rules (the deepest matching file decides,\n\
\\fB!\\fR re-includes, \\fBdir/\\fR matches directories only).\n\
Filter rules are checked first, so \\fB\\-\\-include=debug.log\\ \\-\\-gitignore\\fR\n\
still sends \\fIdebug.log\\fR.\n\
With \\fB\\-\\-delete\\fR, ignored files in the destination are kept (judged by\n\
the source's ignore files) unless \\fB\\-\\-delete\\-excluded\\fR is given.\n\
Git does not ignore \\fI.git\\fR itself; add \\fB\\-\\-exclude=.git/\\fR to leave it out.\n\
.SH \"CHECKSUM AND DELTA\"\n\
\\fB\\-c\\fR compares a file with its destination by the BLAKE3 hash of their\n\
contents, only when their sizes match (as rsync does); both sides are read and\n\
hashed in parallel while the directories are listed.\n\
A file that cannot be read compares equal to another that cannot, as in rsync.\n\
.PP\n\
With \\fB\\-\\-no\\-W\\fR a changed file is sent as a delta against its old\n\
version.\n\
A file of at least 64 KiB that the destination lacks (after a rename or a move)\n\
is rebuilt from a destination file holding its content: one with the same name\n\
or a similar size anywhere in the destination, or one that \\fB\\-\\-delete\\fR\n\
removes in the same run, confirmed by chunk hashes.\n\
Every rebuilt file is checked against the source's hash and copied whole if it\n\
differs.\n\
.SH \"RESCAN MANIFEST\"\n\
A run that copies the contents of one directory (\\fISRC/\\fR) recursively into\n\
an existing local directory and ends with status 0 records what it saw in a\n\
manifest outside the destination: \\fI$XDG_CACHE_HOME/resync\\fR (by default\n\
\\fI~/.cache/resync\\fR), or \\fB\\-\\-manifest\\-dir\\fR; \\fB\\-\\-no\\-manifest\\fR\n\
neither reads nor writes one, \\fB\\-\\-dry\\-run\\fR and \\fB\\-\\-list\\-only\\fR never\n\
write one. A damaged or foreign manifest is ignored with a warning.\n\
By default the manifest changes nothing that could be missed: every source and\n\
destination file is still looked at; with \\fB\\-\\-delete\\fR a destination\n\
directory whose mtime, ctime and inode are unchanged is not read again.\n\
.PP\n\
\\fB\\-\\-trust\\-mtime\\fR (unsafe, opt-in) also believes the manifest for the files\n\
of every source directory whose mtime and inode are unchanged (and whose\n\
destination directory's are): their files are not stat'ed on either side.\n\
It misses a file changed in place (rewritten, appended, chmod'ed, touched)\n\
without a change to its directory, on the source or the destination side.\n\
Files saved by writing a new file and renaming it over the old one are seen.\n\
.SH \"EXIT STATUS\"\n\
.TP\n\
.B 0\n\
Success.\n\
.TP\n\
.B 1\n\
Syntax or usage error, including an option resync does not support yet.\n\
.PP\n\
Other codes follow\n\
.BR rsync (1).\n\
.SH \"SEE ALSO\"\n\
.BR rsync (1)\n",
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Every long option rsync 3.5.0's client accepts (its popt table plus the
    /// 3.5 additions), probed one by one against the real binary.
    const RSYNC_LONG: &str = "help version verbose no-verbose no-v info debug stderr \
        msgs2stderr no-msgs2stderr quiet motd no-motd stats human-readable \
        no-human-readable no-h dry-run archive recursive no-recursive no-r inc-recursive \
        no-inc-recursive i-r no-i-r dirs no-dirs no-d old-dirs old-d perms no-perms no-p \
        executability acls no-acls no-A xattrs no-xattrs no-X times no-times no-t atimes \
        no-atimes no-U open-noatime no-open-noatime crtimes no-crtimes no-N omit-dir-times \
        no-omit-dir-times no-O omit-link-times no-omit-link-times no-J modify-window super \
        no-super fake-super owner no-owner no-o group no-group no-g no-D devices no-devices \
        copy-devices write-devices no-write-devices specials no-specials drop-D no-drop-D \
        links no-links no-l copy-links copy-unsafe-links safe-links insecure-links \
        no-insecure-links confine-root munge-links no-munge-links copy-dirlinks \
        keep-dirlinks hard-links no-hard-links no-H relative no-relative no-R implied-dirs \
        no-implied-dirs i-d no-i-d chmod ignore-times size-only one-file-system \
        no-one-file-system no-x update existing ignore-non-existing ignore-existing \
        max-size min-size max-alloc sparse no-sparse no-S preallocate inplace no-inplace \
        append append-verify no-append del delete delete-before delete-during delete-delay \
        delete-after delete-excluded delete-missing-args ignore-missing-args \
        remove-sent-files remove-source-files force no-force ignore-errors \
        no-ignore-errors max-delete filter exclude include exclude-from include-from \
        cvs-exclude whole-file no-whole-file no-W checksum no-checksum no-c \
        checksum-choice cc block-size compare-dest copy-dest link-dest fuzzy no-fuzzy no-y \
        compress old-compress new-compress no-compress no-z compress-choice zc \
        skip-compress compress-level zl compress-threads zt progress no-progress partial \
        no-partial partial-dir delay-updates no-delay-updates prune-empty-dirs \
        no-prune-empty-dirs no-m log-file log-file-format out-format log-format \
        itemize-changes no-itemize-changes no-i bwlimit no-bwlimit backup no-backup \
        backup-dir suffix list-only read-batch write-batch only-write-batch files-from \
        from0 no-from0 old-args no-old-args secluded-args no-secluded-args protect-args \
        no-protect-args no-s trust-sender numeric-ids no-numeric-ids usermap groupmap \
        chown timeout no-timeout contimeout no-contimeout fsync stop-after time-limit \
        stop-at rsh rsync-path temp-dir iconv no-iconv ipv4 ipv6 8-bit-output \
        no-8-bit-output no-8 mkpath no-mkpath qsort copy-as address port sockopts \
        password-file early-input blocking-io no-blocking-io outbuf remote-option \
        protocol checksum-seed server sender config daemon dparam detach no-detach";

    /// Every rsync short option letter.
    const RSYNC_SHORT: &str = "0468@ABCDEFHIJKLMNOPRSTUVWXabcdefghiklmnopqrstuvxyz";

    fn all_names() -> Vec<&'static str> {
        TABLE.iter().flat_map(|o| o.names.iter().copied()).collect()
    }

    #[test]
    fn every_rsync_long_option_is_in_the_table() {
        let names: HashSet<_> = all_names().into_iter().collect();
        for n in RSYNC_LONG.split_whitespace() {
            assert!(names.contains(format!("--{n}").as_str()), "--{n} missing");
        }
        let rsync: HashSet<String> = RSYNC_LONG
            .split_whitespace()
            .map(|n| format!("--{n}"))
            .collect();
        // resync's own options, on top of rsync's.
        let ours = [
            "--gitignore",
            "--no-gitignore",
            "--manifest-dir",
            "--no-manifest",
            "--trust-mtime",
            "--ca-file",
            "--tls-cert",
            "--tls-key",
            "--plain-tcp",
        ];
        for n in names.iter().filter(|n| n.starts_with("--")) {
            assert!(
                rsync.contains(*n) || ours.contains(n),
                "{n} is not an rsync option"
            );
        }
    }

    #[test]
    fn every_rsync_short_option_is_in_the_table() {
        let shorts: String = TABLE.iter().filter_map(Opt::short).collect();
        let mut ours: Vec<char> = shorts.chars().collect();
        ours.sort_unstable();
        let mut theirs: Vec<char> = RSYNC_SHORT.chars().collect();
        theirs.sort_unstable();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn names_are_unique() {
        let mut seen = HashSet::new();
        for n in all_names() {
            assert!(seen.insert(n), "{n} appears twice");
        }
    }

    #[test]
    fn implemented_matches_having_an_action() {
        for o in TABLE {
            let acts = matches!(o.act, Act::Set(_) | Act::Flag(_) | Act::Value(_));
            assert_eq!(o.implemented, acts, "{}", o.display());
            let takes_value = matches!(o.act, Act::Value(_));
            if acts {
                assert_eq!(o.arg != ArgKind::None, takes_value, "{}", o.display());
            }
        }
    }

    #[test]
    fn value_options_have_a_placeholder() {
        for o in TABLE.iter().filter(|o| o.arg != ArgKind::None) {
            assert!(!o.meta.is_empty(), "{}", o.display());
        }
    }

    #[test]
    fn help_rows_use_rsyncs_columns() {
        let rows = option_help_rows();
        assert!(rows.starts_with("--verbose, -v            increase verbosity\n"));
        assert!(
            rows.contains("\n--temp-dir=DIR, -T       create temporary files in directory DIR\n")
        );
        assert!(
            rows.contains("\n--no-OPTION              turn off an implied OPTION (e.g. --no-D)\n")
        );
        assert!(
            rows.ends_with(
                "--help, -h (*)           show this help (* -h is help only on its own)\n"
            )
        );
    }

    #[test]
    fn roff_escapes_dashes_and_leading_dots() {
        assert_eq!(roff("--no-D"), "\\-\\-no\\-D");
        assert_eq!(roff(".. and"), "\\&.. and");
        assert_eq!(roff("a\\b"), "a\\eb");
    }
}
