//! rsync-compatible command line: the [`Options`] a transfer runs with.
//!
//! The parser (`parse`) follows popt's rules the way rsync uses them: bundled short
//! options (`-avz`), short options with attached or separate values (`-e CMD`,
//! `-f'- *.o'`), `--opt=VAL` and `--opt VAL`, `--no-OPT`, counted `-v`/`-i`.
//! Every rsync option is known to the table in `table`; the ones resync does not
//! implement yet are rejected with exit 1 instead of being silently ignored.

pub mod daemon;
mod parse;
pub mod table;

pub use parse::{ParseOutcome, parse, parse_quiet};

/// How `--append` behaves (`--append` vs `--append-verify`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Append {
    /// Not appending: files are rewritten (via a temp file unless `--inplace`).
    #[default]
    No,
    /// `--append`: trust the existing prefix, only add the missing tail.
    Append,
    /// `--append-verify`: like append, but verify the whole file afterwards.
    Verify,
}

/// When `--delete` removes extraneous files (rsync's `--delete-WHEN`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Delete {
    /// No deletion.
    #[default]
    Off,
    /// `--delete-before`: a pass over the whole tree before transferring.
    Before,
    /// `--delete`/`--del`/`--delete-during`: each directory before its files.
    During,
    /// `--delete-delay`: found during the transfer, removed at the end.
    Delay,
    /// `--delete-after`: a pass after everything is transferred.
    After,
}

/// Which kind of reference directory `--link-dest`, `--compare-dest` and
/// `--copy-dest` name (rsync allows only one kind per run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AltDest {
    /// `--compare-dest`: an unchanged file found there is not copied at all.
    Compare,
    /// `--copy-dest`: an unchanged file found there is copied locally.
    Copy,
    /// `--link-dest`: an unchanged file found there is hard-linked.
    Link,
}

impl AltDest {
    /// The option's name as rsync prints it in messages.
    pub fn option_name(self) -> &'static str {
        match self {
            AltDest::Compare => "--compare-dest",
            AltDest::Copy => "--copy-dest",
            AltDest::Link => "--link-dest",
        }
    }
}

/// rsync's limit on reference directories (`MAX_BASIS_DIRS`).
pub const MAX_BASIS_DIRS: usize = 20;

/// Everything a transfer needs to know, as parsed from argv.
///
/// Field names follow rsync's long option names so that the mapping from the man
/// page is obvious. Booleans default to rsync's defaults (all off); `-a` expands to
/// `-rlptgoD` in the parser, not here.
#[derive(Clone, Debug, Default)]
pub struct Options {
    // ---- output -------------------------------------------------------
    /// `-v` count.
    pub verbose: u8,
    /// `-q`: suppress non-error messages.
    pub quiet: bool,
    /// `-i` count (`-ii` also itemizes unchanged files).
    pub itemize: u8,
    /// `-h` count (1 = human with commas/units as rsync's `-h`).
    pub human_readable: u8,
    /// `--stats`.
    pub stats: bool,
    /// `--list-only` (also implied when there is a single source and no destination).
    pub list_only: bool,
    /// `--out-format=FORMAT`.
    pub out_format: Option<String>,
    /// `--progress` (also from `-P`).
    pub progress: bool,
    /// `--info=progress2`.
    pub progress2: bool,
    /// `--8-bit-output`: do not escape high-bit chars in names.
    pub eight_bit_output: bool,
    /// `--no-h`: print plain numbers without digit grouping (rsync's
    /// `human_readable=0`; the default groups digits with commas).
    pub plain_numbers: bool,
    /// Every `--info` word given, upper-cased (`ALL` for all/none) with its level
    /// 0..=4, in order; `progress`/`progress2` are also folded into
    /// `progress`/`progress2` so most of the engine need not look here.
    pub info: Vec<(String, u8)>,
    /// `--debug=FLAGS` words with their levels, in order.
    pub debug: Vec<(String, u8)>,

    // ---- selection / recursion ---------------------------------------
    /// `-r`.
    pub recursive: bool,
    /// `-d`: transfer directories without recursing.
    pub dirs: bool,
    /// `-R`: use relative path names.
    pub relative: bool,
    /// `--no-implied-dirs` clears this (default true).
    pub implied_dirs: bool,
    /// `--inc-recursive` (default) / `--no-inc-recursive`: only changes how rsync
    /// streams its file list; recorded so a scan strategy may honour it.
    pub inc_recursive: bool,
    /// `--mkpath`: create the destination's missing path components.
    pub mkpath: bool,
    /// `-x` count (`-xx` also skips root-level mount points).
    pub one_file_system: u8,
    /// `--existing`: skip creating new files on the receiver.
    pub existing: bool,
    /// `--ignore-existing`: skip updating files that exist on the receiver.
    pub ignore_existing: bool,
    /// `--max-size=SIZE` in bytes.
    pub max_size: Option<u64>,
    /// `--min-size=SIZE` in bytes.
    pub min_size: Option<u64>,

    // ---- filters and deletion (issue 3) ---------------------------------
    /// Filter arguments in command-line order (`-f`, `--include`, `--exclude`,
    /// the `-from` files, `-F`).
    pub filters: Vec<crate::filter::FilterArg>,
    /// `-C`: add the CVS-ignore rules after the others.
    pub cvs_exclude: bool,
    /// `--gitignore` (resync's own): exclude what `.gitignore` files ignore.
    pub gitignore: bool,
    /// `-0`: `*-from` files are NUL-separated.
    pub from0: bool,
    /// `-m`: prune empty directory chains from the file list.
    pub prune_empty_dirs: bool,
    /// When extraneous destination files are deleted (`--delete*`).
    pub delete: Delete,
    /// `--delete-excluded`.
    pub delete_excluded: bool,
    /// `--max-delete=NUM`.
    pub max_delete: Option<i64>,
    /// `--force`: delete non-empty directories in the way of non-directories.
    pub force: bool,
    /// `-y` count: look for a similar file to use as the delta basis. A
    /// basis only matters to the delta path; local whole-file copies (the
    /// default, as in rsync) are unaffected, exactly as with rsync.
    pub fuzzy: u8,
    /// `--ignore-errors`: delete even after I/O errors.
    pub ignore_errors: bool,
    /// `--files-from=FILE`: the list of names to send, relative to the
    /// (single) source directory.
    pub files_from: Option<std::ffi::OsString>,
    /// Missing source arguments: 0 error, 1 `--ignore-missing-args`,
    /// 2 `--delete-missing-args`.
    pub missing_args: u8,

    // ---- links ---------------------------------------------------------
    /// `-l`: copy symlinks as symlinks.
    pub links: bool,
    /// `-L`: transform symlinks into referent files/dirs.
    pub copy_links: bool,
    /// `--copy-unsafe-links`.
    pub copy_unsafe_links: bool,
    /// `--safe-links`: ignore symlinks that point outside the tree.
    pub safe_links: bool,
    /// `-k` / `--copy-dirlinks`.
    pub copy_dirlinks: bool,
    /// `-K` / `--keep-dirlinks`.
    pub keep_dirlinks: bool,
    /// `-H`: preserve hard links.
    pub hard_links: bool,

    // ---- metadata ------------------------------------------------------
    /// `-p`.
    pub perms: bool,
    /// `-E`: preserve executability.
    pub executability: bool,
    /// `--chmod=CHMOD` (may be given several times; comma lists kept whole).
    pub chmod: Vec<String>,
    /// `-t`.
    pub times: bool,
    /// `-U` / `--atimes`.
    pub atimes: bool,
    /// `--open-noatime` (or `-UU`): read sources with `O_NOATIME`.
    pub open_noatime: bool,
    /// `-O` / `--omit-dir-times`.
    pub omit_dir_times: bool,
    /// `-J` / `--omit-link-times`.
    pub omit_link_times: bool,
    /// `-o`.
    pub owner: bool,
    /// `-g`.
    pub group: bool,
    /// `--numeric-ids`.
    pub numeric_ids: bool,
    /// `--chown=USER:GROUP` (split by the parser into usermap/groupmap like rsync).
    pub chown: Option<String>,
    /// The USER half of `--chown` when non-empty (it also turns on `-o`).
    pub chown_user: Option<String>,
    /// The GROUP half of `--chown` when non-empty (it also turns on `-g`).
    pub chown_group: Option<String>,
    /// `--devices` (from `-D`).
    pub devices: bool,
    /// `--specials` (from `-D`).
    pub specials: bool,
    /// `-X`.
    pub xattrs: bool,
    /// `-A` (implies `-p`).
    pub acls: bool,
    /// `--super` / `--fake-super` are not supported; root is assumed to act as super.
    pub am_root: bool,

    // ---- quick check ---------------------------------------------------
    /// `-n`.
    pub dry_run: bool,
    /// `-c`.
    pub checksum: bool,
    /// `--size-only`.
    pub size_only: bool,
    /// `-I` / `--ignore-times`.
    pub ignore_times: bool,
    /// `-u` / `--update`.
    pub update: bool,
    /// `--modify-window=NUM` in seconds (may be negative in rsync for ns precision; we keep i64).
    pub modify_window: i64,

    // ---- data ----------------------------------------------------------
    /// `-W` (Some(true)), `--no-W` (Some(false)); None = default (whole-file for local).
    pub whole_file: Option<bool>,
    /// `-S`.
    pub sparse: bool,
    /// `--inplace`.
    pub inplace: bool,
    /// `--append` / `--append-verify`.
    pub append: Append,
    /// `--partial` (also from `-P`).
    pub partial: bool,
    /// `--partial-dir=DIR`.
    pub partial_dir: Option<String>,
    /// `-T` / `--temp-dir=DIR`.
    pub temp_dir: Option<String>,
    /// `--delay-updates`.
    pub delay_updates: bool,
    /// `--fsync`.
    pub fsync: bool,

    // ---- rescan manifest (resync only) ----------------------------------
    /// `--no-manifest`: neither read nor write the rescan manifest.
    pub no_manifest: bool,
    /// `--manifest-dir=DIR`: where manifests live instead of
    /// `$XDG_CACHE_HOME/resync` (`~/.cache/resync`).
    pub manifest_dir: Option<std::ffi::OsString>,
    /// `--trust-mtime`: believe the manifest under source directories whose
    /// mtime and inode are unchanged (unsafe; see docs/ARCHITECTURE.md).
    pub trust_mtime: bool,
    /// `--preallocate`.
    pub preallocate: bool,

    // ---- backups, reference directories, source removal ----------------
    /// `-b` / `--backup` (also implied by `--backup-dir`).
    pub backup: bool,
    /// `--backup-dir=DIR` (relative paths are relative to the destination).
    pub backup_dir: Option<std::ffi::OsString>,
    /// `--suffix=SUFFIX` as given; the default (`~`, or empty with
    /// `--backup-dir`) is [`Options::backup_suffix`].
    pub suffix: Option<std::ffi::OsString>,
    /// The kind of the reference directories given, if any.
    pub alt_dest: Option<AltDest>,
    /// `--link-dest`/`--compare-dest`/`--copy-dest` directories in the order
    /// given (relative ones are relative to the destination directory).
    pub basis_dirs: Vec<std::ffi::OsString>,
    /// `--remove-source-files`: the sender removes synchronised non-directories.
    pub remove_source_files: bool,

    // ---- remote-only (accepted, no effect on local transfers) -----------
    /// `-s`/`--secluded-args`/`--protect-args` (Some(true)), `--no-s` (Some(false)).
    pub protect_args: Option<bool>,
    /// `--blocking-io` (Some(true)) / `--no-blocking-io` (Some(false)).
    pub blocking_io: Option<bool>,
    /// `-z`/`--compress`: compress the remote stream (zstd, `docs/PROTOCOL.md`);
    /// no effect on a local copy, as in rsync.
    pub compress: bool,
    /// `--compress-level=NUM` (zstd level; 0 turns compression off).
    pub compress_level: Option<i64>,
    /// `--no-compress`: no compression at all, not even adaptive.
    pub no_compress: bool,
    /// `--timeout=SECONDS` (0, `--no-timeout`: none): a remote transfer
    /// exits 30 when the peer makes no progress for that long, and sends
    /// `Keepalive` when idle (`remote/timeout.rs`). A local transfer has no
    /// peer to wait for.
    pub timeout: u64,
    /// `--bwlimit=RATE` in KiB/s, rsync's unit (0: unlimited): paces what a
    /// remote transfer writes to its transport (`remote/bwlimit.rs`).
    pub bwlimit: u64,
    /// `-e`/`--rsh`: the remote shell command (else `RSYNC_RSH`, else `ssh`).
    pub rsh: Option<std::ffi::OsString>,
    /// `--rsync-path`: the program the remote shell runs (default `resync`).
    pub rsync_path: Option<std::ffi::OsString>,
    /// `--server`: this process is the remote end, speaking the protocol on
    /// stdin/stdout (started by a client over a remote shell).
    pub server: bool,
    /// `--sender` (with `--server`): the server side is the sender (a pull).
    pub sender: bool,
    /// `--old-args` count (`--no-old-args` resets it).
    pub old_args: u8,
    /// Daemon connections and `--daemon` (`options/daemon.rs`).
    pub daemon: daemon::DaemonOpts,

    // ---- operands ------------------------------------------------------
    /// Source operands exactly as given (trailing slashes significant).
    pub sources: Vec<std::ffi::OsString>,
    /// Destination operand; `None` means list-only mode.
    pub dest: Option<std::ffi::OsString>,
}

impl Options {
    /// rsync's `--debug` level for `word` (upper case): the last explicit
    /// `--debug` setting, else what the `-v` count implies (`-vv` gives
    /// `FILTER` 1, `-vvv` 2, as rsync's verbosity table).
    pub fn debug_level(&self, word: &str) -> u8 {
        if let Some((_, l)) = self
            .debug
            .iter()
            .rev()
            .find(|(w, _)| w == word || w == "ALL")
        {
            return *l;
        }
        match word {
            "FILTER" => self.verbose.saturating_sub(1).min(2),
            "DEL" => self.verbose.saturating_sub(1).min(3),
            _ => 0,
        }
    }

    /// The level of an `--info` word as given (the last `WORD` or `ALL`).
    pub fn info_level(&self, word: &str) -> Option<u8> {
        self.info
            .iter()
            .rev()
            .find(|(w, _)| w == word || w == "ALL")
            .map(|(_, l)| *l)
    }

    /// rsync's `--info=name` level: which item lines are printed (1 = changed
    /// items as with `-v`, 2 = also attribute-only changes and "is uptodate").
    pub fn name_level(&self) -> u8 {
        self.info_level("NAME").unwrap_or_else(|| {
            let v = self.verbose.min(2);
            if v == 0 && (self.progress || self.out_format.is_some()) {
                1
            } else {
                v
            }
        })
    }

    /// Whether rsync would use incremental recursion: not without `-r`, nor
    /// with the options that need the whole list first.
    pub fn inc_recurse(&self) -> bool {
        self.recursive
            && self.inc_recursive
            && !self.delay_updates
            && !self.prune_empty_dirs
            && !matches!(self.delete, Delete::Before | Delete::After)
    }

    /// `--progress` without incremental recursion: rsync counts the list
    /// (`building file list ... ` … `N files to consider`).
    pub fn counts_list(&self) -> bool {
        self.progress && !self.quiet && !self.inc_recurse()
    }

    /// rsync's `--info=stats` level: 1 = the closing summary, 2 = `--stats`.
    pub fn stats_level(&self) -> u8 {
        self.info_level("STATS").unwrap_or(if self.stats {
            2
        } else if self.verbose > 0 {
            1
        } else {
            0
        })
    }

    /// The backup suffix in effect: `--suffix`, else `~` without
    /// `--backup-dir` and nothing with it (rsync's defaults).
    pub fn backup_suffix(&self) -> std::ffi::OsString {
        match (&self.suffix, &self.backup_dir) {
            (Some(s), _) => s.clone(),
            (None, Some(_)) => std::ffi::OsString::new(),
            (None, None) => "~".into(),
        }
    }

    /// Options with rsync's non-false defaults filled in (implied dirs on).
    pub fn new() -> Self {
        Options {
            implied_dirs: true,
            inc_recursive: true,
            am_root: rustix::process::geteuid().is_root(),
            ..Default::default()
        }
    }
}
