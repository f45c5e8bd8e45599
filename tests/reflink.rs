//! On a filesystem with reflinks (loop-mounted XFS), `resync -a` clones file
//! data instead of copying it: the copy's extents are shared with the source,
//! and the tree is still exactly what rsync would produce (content, mode,
//! nanosecond mtime).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

mod common;
use common::Xfs;

/// `filefrag -v` marks extents that are shared with another file.
fn shared_extents(p: &Path) -> bool {
    let out = Command::new("filefrag").arg("-v").arg(p).output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains("shared")
}

#[test]
fn copies_on_xfs_share_extents_with_the_source() {
    let Some(x) = Xfs::mount() else { return };
    let src = x.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    let data: Vec<u8> = (0..(8u32 << 20)).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(src.join("sub/big.bin"), &data).unwrap();
    fs::set_permissions(src.join("sub/big.bin"), fs::Permissions::from_mode(0o640)).unwrap();
    let when = std::time::UNIX_EPOCH + std::time::Duration::new(1_600_000_000, 123_456_789);
    fs::File::options()
        .write(true)
        .open(src.join("sub/big.bin"))
        .unwrap()
        .set_modified(when)
        .unwrap();
    let dst = x.path().join("dst");
    let out = Command::new(env!("CARGO_BIN_EXE_resync"))
        .arg("-a")
        .arg(format!("{}/", src.display()))
        .arg(&dst)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let copy = dst.join("sub/big.bin");
    assert_eq!(fs::read(&copy).unwrap(), data);
    let m = fs::metadata(&copy).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o640);
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_600_000_000, 123_456_789));
    assert!(
        shared_extents(&copy),
        "the copy does not share extents (no reflink)"
    );
    assert!(shared_extents(&src.join("sub/big.bin")));
}
