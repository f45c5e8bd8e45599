//! resync: a fast, rsync-compatible file synchronisation engine.
//!
//! The pipeline is described in `docs/ARCHITECTURE.md`: `options` → `flist` (scan) →
//! `plan` (phase 1, sequential, in rsync's file-list order) → `apply` (phase 2,
//! parallel, sorted by source inode) → `report`.

pub mod apply;
pub mod delta;
pub(crate) mod engine;
pub mod exit;
pub mod filter;
pub mod flist;
pub mod manifest;
pub mod options;
pub mod plan;
pub mod remote;
pub mod report;
pub mod sys;

/// Run one transfer described by `opts`; returns rsync's exit code.
pub fn run(opts: options::Options) -> i32 {
    // Before any thread starts (see reserve_fds): the scanner keeps up to
    // 2 x 256 directory descriptors open.
    sys::meta::reserve_fds(1024);
    if opts.daemon.daemon {
        if opts.server {
            crate::report::message(
                "--daemon over a remote shell (--server --daemon) is not supported yet",
            );
            return crate::exit::UNSUPPORTED;
        }
        return remote::daemon::run(&opts);
    }
    if opts.server {
        return remote::server::run(&opts);
    }
    if let Some(code) = remote::client::route(&opts) {
        return code;
    }
    engine::run(opts)
}
