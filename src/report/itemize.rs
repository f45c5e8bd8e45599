//! rsync's `%i` itemize string (`YXcstpoguax`).

use crate::flist::Kind;

/// What changed for one entry, mirroring rsync's `ITEM_*` flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ItemFlags {
    /// Data is being transferred (`>`).
    pub transfer: bool,
    /// A local change (created dir, symlink, device, hard link: `c`/`h`).
    pub local_change: bool,
    /// A hard link to an earlier entry (`h`).
    pub hard_link: bool,
    /// The entry is new on the receiver (`+++++++++`).
    pub is_new: bool,
    /// Checksum/link target/device value differs (`c`).
    pub change: bool,
    /// Size differs (`s`).
    pub size: bool,
    /// Modification time differs (`t`, or `T` without `-t`).
    pub time: bool,
    /// Permissions differ (`p`).
    pub perms: bool,
    /// Owner differs (`o`).
    pub owner: bool,
    /// Group differs (`g`).
    pub group: bool,
    /// Access time differs (`u`).
    pub atime: bool,
    /// ACL differs (`a`).
    pub acl: bool,
    /// Xattrs differ (`x`).
    pub xattr: bool,
}

impl ItemFlags {
    /// rsync's `SIGNIFICANT_ITEM_FLAGS`: anything beyond the local-change marker.
    pub fn significant(&self) -> bool {
        self.transfer
            || self.is_new
            || self.change
            || self.size
            || self.time
            || self.perms
            || self.owner
            || self.group
            || self.atime
            || self.acl
            || self.xattr
    }
}

/// Build the 11-character itemize string exactly as rsync's `log_item` does.
/// `times` is whether `-t` is on (`t` vs `T`); symlink times count only when the
/// receiver can set them (Linux can).
pub fn itemize_string(kind: Kind, f: &ItemFlags, times: bool) -> String {
    let mut c = [b'.'; 11];
    c[0] = if f.local_change {
        if f.hard_link { b'h' } else { b'c' }
    } else if !f.transfer {
        b'.'
    } else {
        b'>'
    };
    c[1] = kind.itemize_char() as u8;
    c[2] = if f.change { b'c' } else { b'.' };
    // A symlink has no size column.
    c[3] = if f.size && kind != Kind::Symlink {
        b's'
    } else {
        b'.'
    };
    c[4] = match (f.time, times) {
        (false, _) => b'.',
        (true, false) => b'T',
        (true, true) => b't',
    };
    c[5] = if f.perms { b'p' } else { b'.' };
    c[6] = if f.owner { b'o' } else { b'.' };
    c[7] = if f.group { b'g' } else { b'.' };
    c[8] = if f.atime { b'u' } else { b'.' };
    c[9] = if f.acl { b'a' } else { b'.' };
    c[10] = if f.xattr { b'x' } else { b'.' };
    if f.is_new {
        for ch in &mut c[2..] {
            *ch = b'+';
        }
    } else if matches!(c[0], b'.' | b'h' | b'c') && c[2..].iter().all(|&ch| ch == b'.') {
        for ch in &mut c[2..] {
            *ch = b' ';
        }
    }
    String::from_utf8(c.to_vec()).expect("ascii")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_file() {
        let f = ItemFlags {
            transfer: true,
            is_new: true,
            ..Default::default()
        };
        assert_eq!(itemize_string(Kind::File, &f, true), ">f+++++++++");
    }

    #[test]
    fn unchanged_dir_is_blank() {
        assert_eq!(
            itemize_string(Kind::Dir, &ItemFlags::default(), true),
            ".d         "
        );
    }

    #[test]
    fn size_and_time() {
        let f = ItemFlags {
            transfer: true,
            size: true,
            time: true,
            ..Default::default()
        };
        assert_eq!(itemize_string(Kind::File, &f, true), ">f.st......");
        assert_eq!(itemize_string(Kind::File, &f, false), ">f.sT......");
    }
}
