//! Helpers shared by the integration tests (`mod common;`).

// Each test crate uses its own subset of these helpers.
#![allow(dead_code)]

pub mod remote;
pub mod sshd;

use std::fs;
use std::path::PathBuf;
use std::process::Command;

/// Loop-mounted XFS with reflink=1; unmounted (lazily) on drop.
pub struct Xfs {
    dir: tempfile::TempDir,
}

impl Xfs {
    /// Mount a fresh 300 MiB XFS (None, with a note, when not root or
    /// without mkfs.xfs).
    pub fn mount() -> Option<Xfs> {
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

    /// The mount point.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for Xfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// `n` seeded random bytes (the same for the same seed).
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut v = vec![0u8; n];
    rng.fill(&mut v);
    v
}

/// Runs resync with `args` + `src/ dst/` in `dir`; returns stdout (exit 0 asserted).
pub fn resync(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_resync"))
        .args(args)
        .arg("src/")
        .arg("dst/")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "resync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The number after `key` in `--stats` output (`Literal data: 1,234 bytes` → 1234).
pub fn stat_figure(out: &str, key: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in {out}"));
    line[key.len()..]
        .trim()
        .trim_end_matches(" bytes")
        .replace(',', "")
        .parse()
        .unwrap()
}
