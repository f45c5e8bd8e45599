//! The process's standard input and output as owned files, for a protocol
//! server that speaks binary frames on them.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;

/// Duplicates of stdin and stdout (`dup`), so frames bypass `std`'s
/// line-buffered `Stdout` and can be moved to reader and writer threads.
///
/// Descriptor 1 itself is then pointed at stderr (`dup2(2, 1)`): the
/// duplicate is the protocol stream's only writer, so closing it really
/// ends the stream for the peer (each side closes after the other's
/// `Goodbye` and waits for the end of stream, `docs/PROTOCOL.md`), and a
/// stray `println!` can never corrupt the frames.
pub fn stdin_stdout() -> io::Result<(File, File)> {
    let i = io::stdin().as_fd().try_clone_to_owned()?;
    let o = io::stdout().as_fd().try_clone_to_owned()?;
    // SAFETY: dup2 on the process's own standard descriptors.
    if unsafe { libc::dup2(2, 1) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((File::from(i), File::from(o)))
}

/// Point fd 1 at stderr once the protocol has its own duplicate of stdout
/// ([`stdin_stdout`]): a line the server's engine prints for the user
/// (rsync's stdout messages) then lands on stderr instead of inside the
/// binary stream, where it would corrupt the next frame.
pub fn stdout_to_stderr() -> io::Result<()> {
    // SAFETY: dup2 on two descriptors this process owns; fd 1 is replaced
    // atomically and nothing holds a Rust object that owns fd 1 itself.
    if unsafe { libc::dup2(2, 1) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
