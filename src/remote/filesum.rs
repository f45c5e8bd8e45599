//! The whole-file checksum a sender puts in `FileEnd` and the receiver
//! checks its result against: BLAKE3, or XXH3-128 for a file sent whole
//! (or appended to) when both sides offer
//! [`cap::XXH3_SUMS`](super::proto::cap::XXH3_SUMS). A file rebuilt from a
//! delta is always checked with BLAKE3 (the delta engine's contract).
//!
//! Why XXH3 for files sent whole: their check guards against accidents (a
//! bug in writing), not against an attacker — the transport (TLS, ssh)
//! already authenticates every byte. rsync 3.2+ uses XXH3-128 for the same
//! check. Profiled on the linux tree over the LAN link, BLAKE3 of every file
//! on both ends was ~1.3 CPU-seconds of a 2-core machine; XXH3 is about ten
//! times cheaper. A peer without the capability gets BLAKE3.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Which checksum a connection's `FileEnd`s carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// 32 bytes of BLAKE3.
    Blake3,
    /// XXH3-128, big-endian, in the first 16 of the 32 bytes; the rest zero.
    Xxh3,
}

impl Kind {
    /// The kind for one file: `agreed` ([`Kind::from_caps`]) for a file
    /// sent whole or appended to, BLAKE3 for one rebuilt from a delta
    /// (`delta`: the request carried the basis's signature).
    pub fn for_file(agreed: Kind, delta: bool) -> Kind {
        if delta { Kind::Blake3 } else { agreed }
    }

    /// The kind agreed by the capabilities both sides offered.
    pub fn from_caps(caps: u64) -> Kind {
        if caps & super::proto::cap::XXH3_SUMS != 0 {
            Kind::Xxh3
        } else {
            Kind::Blake3
        }
    }
}

/// A running whole-file checksum of either kind.
pub enum Hasher {
    /// BLAKE3 (boxed: its state is ~2 KiB).
    Blake3(Box<blake3::Hasher>),
    /// XXH3-128 (boxed: its state is ~600 bytes).
    Xxh3(Box<xxhash_rust::xxh3::Xxh3>),
}

/// Inputs from this size up are hashed on all cores (BLAKE3 only; XXH3 is
/// faster on one core than BLAKE3 on two).
const PARALLEL_MIN: usize = 1 << 20;

impl Hasher {
    /// An empty checksum of `kind`.
    pub fn new(kind: Kind) -> Hasher {
        match kind {
            Kind::Blake3 => Hasher::Blake3(Box::default()),
            Kind::Xxh3 => Hasher::Xxh3(Box::default()),
        }
    }

    /// Add `data`; large inputs spread over all cores where that helps.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Blake3(h) if data.len() >= PARALLEL_MIN => {
                h.update_rayon(data);
            }
            Hasher::Blake3(h) => {
                h.update(data);
            }
            Hasher::Xxh3(h) => h.update(data),
        }
    }

    /// The 32 bytes of `FileEnd`.
    pub fn finish(&self) -> [u8; 32] {
        match self {
            Hasher::Blake3(h) => *h.finalize().as_bytes(),
            Hasher::Xxh3(h) => {
                let mut out = [0u8; 32];
                out[..16].copy_from_slice(&h.digest128().to_be_bytes());
                out
            }
        }
    }
}

/// Files from this size up are hashed through a mapping (no copy out of the
/// page cache).
const MAP_MIN: u64 = 16 << 20;

/// Add the first `len` bytes of `f` to `h`; a file shorter than that is an
/// `UnexpectedEof` error.
pub fn update_from_file(h: &mut Hasher, f: &File, len: u64) -> io::Result<()> {
    if len >= MAP_MIN && f.metadata()?.len() >= len {
        let map = crate::sys::mmap::map_read(f, len, crate::sys::mmap::Access::Sequential)?;
        h.update(&map);
        return Ok(());
    }
    let mut buf = vec![0u8; (len as usize).clamp(1, 256 << 10)];
    let mut at = 0u64;
    while at < len {
        let n = ((len - at) as usize).min(buf.len());
        let got = f.read_at(&mut buf[..n], at)?;
        if got == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        h.update(&buf[..got]);
        at += got as u64;
    }
    Ok(())
}

/// The checksum of the first `len` bytes of `f`.
pub fn of_file(kind: Kind, f: &File, len: u64) -> io::Result<[u8; 32]> {
    let mut h = Hasher::new(kind);
    update_from_file(&mut h, f, len)?;
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blake3_kind_is_plain_blake3_in_one_piece_or_many() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut h = Hasher::new(Kind::Blake3);
        for piece in data.chunks(700_000) {
            h.update(piece);
        }
        assert_eq!(h.finish(), *blake3::hash(&data).as_bytes());
    }

    #[test]
    fn xxh3_kind_is_xxh3_128_big_endian_then_zeros() {
        let data = b"the quick brown fox".repeat(1000);
        let mut h = Hasher::new(Kind::Xxh3);
        h.update(&data[..5]);
        h.update(&data[5..]);
        let out = h.finish();
        let want = xxhash_rust::xxh3::xxh3_128(&data).to_be_bytes();
        assert_eq!(&out[..16], &want);
        assert_eq!(&out[16..], &[0u8; 16]);
        // A one-byte change changes it.
        let mut other = data.clone();
        other[1234] ^= 1;
        let mut h2 = Hasher::new(Kind::Xxh3);
        h2.update(&other);
        assert_ne!(h2.finish(), out);
    }

    #[test]
    fn files_hash_as_their_bytes_and_short_files_are_eof() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..(17u32 << 20)).map(|i| (i % 253) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let f = File::open(&p).unwrap();
        for kind in [Kind::Blake3, Kind::Xxh3] {
            for len in [0u64, 1, 300_000, data.len() as u64] {
                let mut h = Hasher::new(kind);
                h.update(&data[..len as usize]);
                assert_eq!(
                    of_file(kind, &f, len).unwrap(),
                    h.finish(),
                    "{kind:?} {len}"
                );
            }
            let e = of_file(kind, &f, data.len() as u64 + 1).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        }
    }

    #[test]
    fn the_kind_follows_the_capability() {
        use super::super::proto::cap;
        assert_eq!(Kind::from_caps(cap::ZSTD), Kind::Blake3);
        assert_eq!(Kind::from_caps(cap::ZSTD | cap::XXH3_SUMS), Kind::Xxh3);
        // Deltas keep BLAKE3 whatever was agreed.
        assert_eq!(Kind::for_file(Kind::Xxh3, true), Kind::Blake3);
        assert_eq!(Kind::for_file(Kind::Xxh3, false), Kind::Xxh3);
        assert_eq!(Kind::for_file(Kind::Blake3, false), Kind::Blake3);
    }
}
