//! The destination operand: a directory to fill, or the exact name of a single
//! file, as rsync decides it.

use super::fail_receiver as fail;
use crate::exit;
use crate::flist;
use crate::options::Options;
use crate::report;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where entries land: under a directory, or (single file) at an exact path.
pub(super) enum DestMode {
    /// Entries go under this directory.
    Dir(PathBuf),
    /// The only entry is written to this path.
    File(PathBuf),
}

impl DestMode {
    /// The directory entry names are relative to (the destination directory,
    /// or the parent of a single destination file): rsync's working
    /// directory on the receiver, against which `--backup-dir` and the
    /// reference directories are resolved.
    pub(super) fn root(&self) -> PathBuf {
        match self {
            DestMode::Dir(d) => d.clone(),
            DestMode::File(f) => match f.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            },
        }
    }

    /// The destination path of an entry named `name` in the list.
    pub(super) fn path_of(&self, name: &Path) -> PathBuf {
        match self {
            DestMode::File(p) => p.clone(),
            DestMode::Dir(d) if name.as_os_str() == "." => d.clone(),
            DestMode::Dir(d) => d.join(name),
        }
    }
}

/// Decide whether the destination operand is a directory or the target name,
/// as rsync's `get_local_name`: a list of exactly one entry (`single`, of
/// which `single_dir` tells whether it is a directory) goes to the name itself
/// unless the name is an existing directory or ends in `/`.
pub(super) fn dest_mode(
    opts: &Options,
    dest: &OsStr,
    single: bool,
    single_dir: bool,
) -> Result<DestMode, i32> {
    let path = PathBuf::from(dest);
    let trailing = dest.as_bytes().ends_with(b"/");
    let single_file = single;
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => Ok(DestMode::Dir(path)),
        Ok(_) => {
            if single_file && single_dir && !trailing {
                report::message_bare("ERROR: cannot overwrite non-directory with a directory");
                report::exit_message(exit::FILE_SELECT, "Receiver");
                Err(exit::FILE_SELECT)
            } else if single_file && !trailing {
                Ok(DestMode::File(path))
            } else if trailing {
                Err(fail(
                    &format!(
                        "[Receiver] ERROR: cannot stat destination \"{}\": Not a directory (20)",
                        report::abs_display(&path)
                    ),
                    exit::FILE_SELECT,
                ))
            } else {
                report::message_bare(
                    "ERROR: destination must be a directory when copying more than 1 file",
                );
                report::exit_message(exit::FILE_SELECT, "Receiver");
                Err(exit::FILE_SELECT)
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Err(fail(
            &format!(
                "[Receiver] ERROR: cannot stat destination \"{}\": {}",
                report::abs_display(&path),
                flist::errno_text(&e)
            ),
            exit::FILE_SELECT,
        )),
        Err(_) => {
            if single_file && !trailing {
                let parent = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                if !parent.is_dir() {
                    if opts.mkpath {
                        if let Err(e) = std::fs::create_dir_all(parent) {
                            return Err(fail(
                                &format!(
                                    "[Receiver] mkdir \"{}\" failed: {}",
                                    report::abs_display(parent),
                                    flist::errno_text(&e)
                                ),
                                exit::FILE_IO,
                            ));
                        }
                    } else {
                        let e = std::fs::metadata(parent)
                            .err()
                            .unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::ENOTDIR));
                        return Err(fail(
                            &format!(
                                "[Receiver] change_dir#3 \"{}\" failed: {}",
                                report::abs_display(parent),
                                flist::errno_text(&e)
                            ),
                            exit::FILE_SELECT,
                        ));
                    }
                }
                Ok(DestMode::File(path))
            } else {
                Ok(DestMode::Dir(path))
            }
        }
    }
}

/// Create the destination directory when missing (`created directory DEST`);
/// returns whether it was (or, with `-n`, would be) created.
/// Whether rsync says `created directory X`: at `--info=name1` (`-v`, or a
/// client's `--progress` unless an `--out-format` without `%b`/`%c` logs
/// names before each transfer) or when the item lines show `%i`.
pub(super) fn announces_created(opts: &Options) -> bool {
    let logs_before = opts
        .out_format
        .as_deref()
        .is_some_and(|f| !f.contains("%b") && !f.contains("%c"));
    let name = opts.info_level("NAME").unwrap_or(if opts.verbose > 0 {
        1
    } else {
        u8::from(opts.progress && !opts.server && !logs_before)
    });
    name > 0 || opts.itemize > 0 || opts.out_format.as_deref().is_some_and(|f| f.contains("%i"))
}

pub(super) fn ensure_dest_dir(
    opts: &Options,
    d: &Path,
    shown: &OsStr,
    announce: bool,
    out: &mut impl Write,
) -> Result<bool, i32> {
    if d.is_dir() {
        return Ok(false);
    }
    if opts.dry_run {
        if announce {
            let _ = writeln!(out, "created directory {}", display_operand(shown));
        }
        return Ok(true);
    }
    // --mkpath: rsync counts the components it made, and then treats the
    // destination as one that was there (`.d..t` for `./`).
    let missing = if opts.mkpath {
        d.ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
            .count()
    } else {
        0
    };
    let r = if opts.mkpath {
        std::fs::create_dir_all(d)
    } else {
        std::fs::create_dir(d)
    };
    match r {
        Ok(()) if opts.mkpath => {
            if announce {
                let what = if missing == 1 {
                    "directory"
                } else {
                    "directories"
                };
                let _ = writeln!(
                    out,
                    "created {missing} {what} for {}",
                    display_operand(shown)
                );
            }
            Ok(false)
        }
        Ok(()) => {
            if announce {
                let _ = writeln!(out, "created directory {}", display_operand(shown));
            }
            Ok(true)
        }
        Err(e) => Err(fail(
            &format!(
                "[Receiver] mkdir \"{}\" failed: {}",
                report::abs_display(Path::new(OsStr::from_bytes(trim_slashes(
                    d.as_os_str().as_bytes()
                )))),
                flist::errno_text(&e)
            ),
            exit::FILE_IO,
        )),
    }
}

fn trim_slashes(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 1 && b[end - 1] == b'/' {
        end -= 1;
    }
    &b[..end]
}

/// The destination operand as rsync echoes it (trailing slashes dropped).
fn display_operand(s: &OsStr) -> String {
    let b = s.as_bytes();
    let mut end = b.len();
    while end > 1 && b[end - 1] == b'/' {
        end -= 1;
    }
    report::escape_bytes(&b[..end], false)
}
