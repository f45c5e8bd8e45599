//! The process's standard input and output as owned files, for a protocol
//! server that speaks binary frames on them.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;

/// Duplicates of stdin and stdout (`dup`), so frames bypass `std`'s
/// line-buffered `Stdout` and can be moved to reader and writer threads.
pub fn stdin_stdout() -> io::Result<(File, File)> {
    let i = io::stdin().as_fd().try_clone_to_owned()?;
    let o = io::stdout().as_fd().try_clone_to_owned()?;
    Ok((File::from(i), File::from(o)))
}
