//! Setting metadata: owner, permissions, xattrs/ACLs, times (to the nanosecond).
//!
//! Order matters and follows rsync: owner first (chown clears setuid bits), then
//! permissions, then xattrs/ACLs, then times last (any write would move them).

use super::{Ctx, err_text};
use crate::flist::{Entry, Kind};
use crate::plan::Item;
use crate::sys::time::Timestamp;
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Owner and group to give the destination, or None to leave alone.
pub(crate) fn wanted_owner(ctx: &Ctx, e: &Entry) -> (Option<u32>, Option<u32>) {
    let o = &ctx.opts;
    let uid = (o.owner && o.am_root).then_some(e.meta.uid);
    let gid = o.group.then_some(e.meta.gid);
    (uid, gid)
}

/// The mtime/atime pair to set, or None when `-t`/`-U` are off.
fn wanted_times(ctx: &Ctx, e: &Entry) -> (Option<Timestamp>, Option<Timestamp>) {
    let o = &ctx.opts;
    let keep_m = o.times
        && match e.meta.kind {
            Kind::Dir => !o.omit_dir_times,
            Kind::Symlink => !o.omit_link_times,
            _ => true,
        };
    let m = keep_m.then(|| Timestamp::new(e.meta.mtime, e.meta.mtime_nsec));
    // rsync's protocol carries access times in whole seconds.
    let a = (o.atimes && e.meta.kind != Kind::Dir).then(|| Timestamp::new(e.meta.atime, 0));
    (a, m)
}

/// Set everything on a freshly written temp file through its descriptor.
pub(crate) fn set_file_meta_fd(
    ctx: &Ctx,
    e: &Entry,
    it: &Item,
    f: &File,
    shown: &Path,
    chmod: bool,
) -> bool {
    let mut ok = true;
    let (uid, gid) = wanted_owner(ctx, e);
    // Only change what differs: a chown that changes nothing still dirties
    // the inode (a journal write per file on ext4).
    let (uid, gid) = match crate::sys::meta::fstat_full(f) {
        Ok(st) => (uid.filter(|&u| u != st.uid), gid.filter(|&g| g != st.gid)),
        Err(_) => (uid, gid),
    };
    if uid.is_some() || gid.is_some() {
        if let Err(err) = crate::sys::meta::fchown(f, uid, gid) {
            if ctx.opts.am_root {
                ctx.error(format!(
                    "[receiver] chown \"{}\" failed: {}",
                    crate::report::abs_display(shown),
                    err_text(&err)
                ));
                ok = false;
            }
        }
    }
    if chmod {
        if let Err(err) = crate::sys::meta::fchmod(f, it.mode) {
            ctx.error(format!(
                "[receiver] chmod \"{}\" failed: {}",
                crate::report::abs_display(shown),
                err_text(&err)
            ));
            ok = false;
        }
    }
    if let Some(x) = &e.xattrs {
        ok &= sync_xattrs_fd(ctx, f, x, shown);
    }
    let (a, m) = wanted_times(ctx, e);
    if a.is_some() || m.is_some() {
        if let Err(err) = crate::sys::time::set_times_fd(f, a, m) {
            ctx.error(format!(
                "[receiver] failed to set times on \"{}\": {}",
                crate::report::abs_display(shown),
                err_text(&err)
            ));
            ok = false;
        }
    }
    ok
}

fn xattr_list_wanted(names: Vec<OsString>, ctx: &Ctx) -> Vec<OsString> {
    names
        .into_iter()
        .filter(|n| crate::flist::xattr_wanted(n.as_encoded_bytes(), &ctx.opts))
        .collect()
}

fn sync_xattrs_fd(ctx: &Ctx, f: &File, want: &[(OsString, Vec<u8>)], shown: &Path) -> bool {
    let have = crate::sys::xattr::fd_list(f).unwrap_or_default();
    for n in xattr_list_wanted(have, ctx) {
        if !want.iter().any(|(w, _)| *w == n) {
            let _ = crate::sys::xattr::fd_remove(f, &n);
        }
    }
    let mut ok = true;
    for (n, v) in want {
        if let Err(err) = crate::sys::xattr::fd_set(f, n, v) {
            ctx.error(format!(
                "[receiver] rsync_xal_set: lsetxattr(\"{}\",\"{}\") failed: {}",
                crate::report::abs_display(shown),
                n.to_string_lossy(),
                err_text(&err)
            ));
            ok = false;
        }
    }
    ok
}

fn sync_xattrs_path(ctx: &Ctx, p: &Path, want: &[(OsString, Vec<u8>)], is_link: bool) -> bool {
    let have = crate::sys::xattr::list(p, false).unwrap_or_default();
    for n in xattr_list_wanted(have, ctx) {
        if !want.iter().any(|(w, _)| *w == n) {
            let _ = crate::sys::xattr::remove(p, &n, false);
        }
    }
    let mut ok = true;
    for (n, v) in want {
        if let Err(err) = crate::sys::xattr::set(p, n, v, false) {
            if is_link && crate::sys::xattr::is_unsupported(&err) {
                continue;
            }
            ctx.error(format!(
                "[receiver] rsync_xal_set: lsetxattr(\"{}\",\"{}\") failed: {}",
                crate::report::abs_display(p),
                n.to_string_lossy(),
                err_text(&err)
            ));
            ok = false;
        }
    }
    ok
}

/// The path rsync shows for an item in messages: the transfer root is
/// `DEST/.`.
pub(crate) fn shown(e: &Entry, it: &Item) -> String {
    if e.name().as_os_str() == "." {
        let s = it.dest.as_os_str().as_encoded_bytes();
        let mut end = s.len();
        while end > 1 && s[end - 1] == b'/' {
            end -= 1;
        }
        let mut v = s[..end].to_vec();
        v.extend_from_slice(b"/.");
        crate::report::abs_display(Path::new(std::ffi::OsStr::from_bytes(&v)))
    } else {
        crate::report::abs_display(&it.dest)
    }
}

/// Which attributes an in-place metadata update must set.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Want {
    /// The entry was just created (everything differs from the defaults).
    pub fresh: bool,
    /// Times must be set even if they looked equal (contents were written).
    pub times: bool,
}

/// Set metadata on an entry by path (symlinks are not followed), touching only
/// what differs from the destination's state, as rsync's `set_file_attrs`:
/// an unchanged attribute is never rewritten (and cannot fail).
pub(crate) fn set_path_meta(ctx: &Ctx, e: &Entry, it: &Item, p: &Path, want: Want) -> bool {
    let mut ok = true;
    let is_link = e.meta.kind == Kind::Symlink;
    let cur = if want.fresh { None } else { it.dest_meta };
    let (uid, gid) = wanted_owner(ctx, e);
    let (my_uid, my_gid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    let uid = uid.filter(|&u| u != cur.map_or(my_uid, |c| c.uid));
    let gid = gid.filter(|&g| g != cur.map_or(my_gid, |c| c.gid));
    if uid.is_some() || gid.is_some() {
        if let Err(err) = crate::sys::meta::lchown(p, uid, gid) {
            let what = if uid.is_some() { "chown" } else { "chgrp" };
            ctx.error(format!(
                "[generator] {what} {} failed: {}",
                quoted(e, it, p),
                err_text(&err)
            ));
            ok = false;
        }
    }
    let perms_differ = cur.is_none_or(|c| c.perms() != it.mode);
    if !is_link && perms_differ {
        if let Err(err) = crate::sys::meta::chmod(p, it.mode) {
            ctx.error(format!(
                "[generator] failed to set permissions on {}: {}",
                quoted(e, it, p),
                err_text(&err)
            ));
            ok = false;
        }
    }
    if let Some(x) = &e.xattrs {
        if want.fresh || it.flags.xattr || it.flags.acl || cur.is_none() {
            ok &= sync_xattrs_path(ctx, p, x, is_link);
        }
    }
    let (a, m) = wanted_times(ctx, e);
    let m =
        m.filter(|_| want.fresh || want.times || it.flags.time || it.exact_time || cur.is_none());
    let a = a.filter(|_| want.fresh || it.flags.atime || cur.is_none());
    if a.is_some() || m.is_some() {
        if let Err(err) = crate::sys::time::set_times(p, a, m, false) {
            ctx.error(format!(
                "[generator] failed to set times on {}: {}",
                quoted(e, it, p),
                err_text(&err)
            ));
            ok = false;
        }
    }
    ok
}

/// `"PATH"` for messages; temp names stand for their destination.
fn quoted(e: &Entry, it: &Item, p: &Path) -> String {
    if p == it.dest {
        format!("\"{}\"", shown(e, it))
    } else {
        format!("\"{}\"", crate::report::abs_display(p))
    }
}

/// Fix attributes of an existing, data-identical entry in place.
pub(crate) fn fix_attrs(ctx: &Ctx, e: &Entry, it: &Item) -> bool {
    set_path_meta(
        ctx,
        e,
        it,
        &it.dest,
        Want {
            fresh: false,
            times: false,
        },
    )
}

/// Directory metadata, set after its contents: what the plan found different
/// (everything for a new directory), and the times again when the directory
/// was written into.
pub(crate) fn set_dir_meta(ctx: &Ctx, e: &Entry, it: &Item, dirty: bool) {
    let fresh = it.action == crate::plan::Action::MkDir;
    if it.action != crate::plan::Action::Nothing {
        set_path_meta(
            ctx,
            e,
            it,
            &it.dest,
            Want {
                fresh,
                times: false,
            },
        );
    }
    // Restoring the times of a directory that was written into is silent on
    // failure, as rsync's final touch-up of directories is.
    if dirty && !fresh && !it.flags.time {
        let (a, m) = wanted_times(ctx, e);
        // A directory only looked into (`--delete` found nothing) still has
        // its times: setting them again would change its ctime for nothing
        // (which the rescan manifest takes as a change by someone else).
        let same = a.is_none()
            && crate::sys::meta::lstat_full(&it.dest).is_ok_and(|st| Some(st.mtime) == m);
        if m.is_some() && !same {
            let _ = crate::sys::time::set_times(&it.dest, a, m, false);
        }
    }
}
