//! On a filesystem with reflinks (loop-mounted XFS), `resync -a` clones file
//! data instead of copying it: the copy's extents are shared with the source,
//! and the tree is still exactly what rsync would produce (content, mode,
//! nanosecond mtime).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Loop-mounted XFS with reflink=1; unmounted (lazily) on drop.
struct Xfs {
    dir: tempfile::TempDir,
}

impl Xfs {
    fn mount() -> Option<Xfs> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipping: loop mounts need root");
            return None;
        }
        if Command::new("mkfs.xfs").arg("-V").output().is_err() {
            eprintln!("skipping: mkfs.xfs missing (test.sh installs xfsprogs)");
            return None;
        }
        let dir = tempfile::tempdir_in("/tmp").unwrap();
        let img = dir.path().join("img");
        fs::File::create(&img).unwrap().set_len(300 << 20).unwrap();
        let mkfs = Command::new("mkfs.xfs")
            .args(["-q", "-m", "reflink=1"])
            .arg(&img)
            .status()
            .unwrap();
        assert!(mkfs.success());
        let mnt = dir.path().join("mnt");
        fs::create_dir(&mnt).unwrap();
        let mount = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&mnt)
            .status()
            .unwrap();
        assert!(mount.success(), "loop mount failed although we are root");
        Some(Xfs { dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for Xfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

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
