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
    let a = (o.atimes && e.meta.kind != Kind::Dir)
        .then(|| Timestamp::new(e.meta.atime, e.meta.atime_nsec));
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

/// Set metadata on an entry by path (symlinks are not followed).
pub(crate) fn set_path_meta(ctx: &Ctx, e: &Entry, it: &Item, p: &Path, times: bool) -> bool {
    let mut ok = true;
    let is_link = e.meta.kind == Kind::Symlink;
    let (uid, gid) = wanted_owner(ctx, e);
    if uid.is_some() || gid.is_some() {
        let cur = std::fs::symlink_metadata(p).ok();
        let need = cur.is_none_or(|m| {
            use std::os::unix::fs::MetadataExt;
            uid.is_some_and(|u| u != m.uid()) || gid.is_some_and(|g| g != m.gid())
        });
        if need {
            if let Err(err) = crate::sys::meta::lchown(p, uid, gid) {
                if ctx.opts.am_root {
                    ctx.error(format!(
                        "[receiver] chown \"{}\" failed: {}",
                        crate::report::abs_display(p),
                        err_text(&err)
                    ));
                    ok = false;
                }
            }
        }
    }
    if !is_link {
        if let Err(err) = crate::sys::meta::chmod(p, it.mode) {
            ctx.error(format!(
                "[receiver] chmod \"{}\" failed: {}",
                crate::report::abs_display(p),
                err_text(&err)
            ));
            ok = false;
        }
    }
    if let Some(x) = &e.xattrs {
        ok &= sync_xattrs_path(ctx, p, x, is_link);
    }
    if times {
        let (a, m) = wanted_times(ctx, e);
        if a.is_some() || m.is_some() {
            if let Err(err) = crate::sys::time::set_times(p, a, m, false) {
                ctx.error(format!(
                    "[receiver] failed to set times on \"{}\": {}",
                    crate::report::abs_display(p),
                    err_text(&err)
                ));
                ok = false;
            }
        }
    }
    ok
}

/// Fix attributes of an existing, data-identical entry in place.
pub(crate) fn fix_attrs(ctx: &Ctx, e: &Entry, it: &Item) -> bool {
    set_path_meta(ctx, e, it, &it.dest, true)
}

/// Directory metadata, set after its contents. `all` sets owner/perms/xattrs too;
/// otherwise only the times are restored (the directory was written into).
pub(crate) fn set_dir_meta(ctx: &Ctx, e: &Entry, it: &Item, all: bool) {
    if all {
        set_path_meta(ctx, e, it, &it.dest, true);
    } else {
        let (a, m) = wanted_times(ctx, e);
        if m.is_some() || a.is_some() {
            let _ = crate::sys::time::set_times(&it.dest, a, m, false);
        }
    }
}
