use super::format::{self, DirState, Header, Reject};
use super::*;
use crate::flist::Kind;
use std::collections::HashSet;

fn meta(seed: u64, mode: u32) -> Meta {
    Meta {
        kind: Kind::from_mode(mode),
        mode,
        size: seed * 7,
        mtime: 1_700_000_000 + seed as i64,
        mtime_nsec: (seed * 13 % 1_000_000_000) as u32,
        atime: 0,
        atime_nsec: 0,
        uid: 1000,
        gid: 1000,
        rdev: 0,
        ino: 100 + seed,
        dev: 42,
        nlink: 1,
    }
}

fn state(seed: u64) -> DirState {
    DirState {
        mtime: 1_600_000_000 + seed as i64,
        mtime_nsec: 5,
        ctime: 1_600_000_100 + seed as i64,
        ctime_nsec: 7,
        ino: 9000 + seed,
    }
}

fn hashed() -> format::Hashed {
    format::Hashed {
        sum: [0xab; 32],
        src_ctime: crate::sys::time::Timestamp::new(1_700_000_001, 2),
        dest_ctime: crate::sys::time::Timestamp::new(1_700_000_003, 999_999_999),
    }
}

/// Records the sample's three directories into `rec` (against `old`, if any).
fn record_sample(rec: &Recorder, old: Option<&Manifest>) {
    for (i, name) in [&b"sub"[..], b".", b"sub/deeper"].iter().enumerate() {
        let mut d = DirRecording::new(name, &state(i as u64), Some(&state(50)), 4);
        let src = meta(1, 0o100644);
        let mut dest = src;
        dest.ino = 77;
        let mut a = entry_rec(b"a", false, false, &src, Some(&dest), None);
        a.hash = Some(hashed());
        d.entry(&a);
        let mut other = meta(2, 0o100600);
        other.size = 1;
        d.entry(&entry_rec(
            b"b",
            false,
            false,
            &meta(2, 0o100644),
            Some(&other),
            None,
        ));
        let t = OsString::from("target/x");
        d.entry(&entry_rec(
            b"l",
            false,
            false,
            &meta(3, 0o120777),
            None,
            Some(&t),
        ));
        // A hash without a destination is not recorded.
        let mut e = entry_rec(b"z", true, false, &meta(4, 0o040755), None, None);
        e.hash = Some(hashed());
        d.entry(&e);
        rec.add(d, old);
    }
}

/// A payload of three directories with files, a symlink, a hash, a
/// destination that differs from the source and one that is missing.
fn sample() -> Vec<u8> {
    let rec = Recorder::default();
    record_sample(&rec, None);
    let mut complete = HashSet::new();
    complete.insert(b"sub".to_vec());
    rec.payload(None, &HashSet::new(), &complete).unwrap()
}

#[test]
fn round_trip_keeps_every_field() {
    let m = Manifest::from_payload(sample()).unwrap();
    assert_eq!(m.len(), 3);
    let d = m.dir(b"sub").unwrap();
    assert_eq!(d.src, state(0));
    assert_eq!(d.dest, Some(state(50)));
    assert_eq!(d.flags & format::D_COMPLETE, format::D_COMPLETE);
    assert_eq!(m.dir(b".").unwrap().flags & format::D_COMPLETE, 0);
    let e: Vec<_> = m.entries(d).map(Result::unwrap).collect();
    assert_eq!(e.len(), 4);
    assert_eq!(e[0].name, b"a");
    assert_eq!(e[0].src, meta(1, 0o100644));
    assert_eq!(e[0].dest.unwrap().ino, 77);
    assert_eq!(e[0].dest.unwrap().mtime_nsec, meta(1, 0).mtime_nsec);
    assert_eq!(e[1].dest.unwrap().mode, 0o100600);
    assert_eq!(e[1].dest.unwrap().size, 1);
    assert_eq!(e[2].link, Some(&b"target/x"[..]));
    assert_eq!(e[2].dest, None);
    assert_eq!(e[3].flags & format::E_RECURSE, format::E_RECURSE);
    assert_eq!(m.hash(b"sub", b"a"), Some(hashed()));
    assert_eq!(m.hash(b"sub", b"b"), None);
    assert_eq!(m.hash(b"sub", b"z"), None);
    assert_eq!(e[3].hash, None);
}

#[test]
fn dirty_directories_are_left_out() {
    let rec = Recorder::default();
    for n in [&b"x"[..], b"y"] {
        rec.add(DirRecording::new(n, &state(1), None, 0), None);
    }
    let mut dirty = HashSet::new();
    dirty.insert(b"x".to_vec());
    let m = Manifest::from_payload(rec.payload(None, &dirty, &HashSet::new()).unwrap()).unwrap();
    assert!(m.dir(b"x").is_none());
    assert!(m.dir(b"y").is_some());
}

#[test]
fn header_rejects_other_pair_options_version_and_corruption() {
    let h = Header {
        pair: [1; 32],
        opts: [2; 32],
    };
    let file = format::seal(&h, &sample());
    assert!(format::open(&file, &h).is_ok());
    let other = Header {
        pair: [3; 32],
        ..h.clone()
    };
    assert_eq!(format::open(&file, &other), Err(Reject::OtherPair));
    let opts = Header {
        opts: [4; 32],
        ..h.clone()
    };
    assert_eq!(format::open(&file, &opts), Err(Reject::OtherOptions));
    // Version 1 (no ctimes with the hashes) is another version.
    let mut v1 = file.clone();
    v1[4] = 1;
    assert_eq!(format::open(&v1, &h), Err(Reject::Version(1)));
    let short = &file[..file.len() - 1];
    assert!(matches!(format::open(short, &h), Err(Reject::Corrupt(_))));
    let mut flip = file.clone();
    let last = flip.len() - 3;
    flip[last] ^= 0x10;
    assert!(matches!(format::open(&flip, &h), Err(Reject::Corrupt(_))));
}

/// Mutation test in the spirit of `delta/sig.rs`: every truncation and
/// every single-byte change of a valid payload decodes to an error or to
/// something, never a panic, and never allocates from a forged count
/// (counts are checked against the bytes that remain).
#[test]
fn mutated_payloads_never_panic() {
    let good = sample();
    for cut in 0..good.len() {
        assert!(Manifest::from_payload(good[..cut].to_vec()).is_err());
    }
    let mut entry_errors = 0;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..good.len() {
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut bad = good.clone();
            bad[i] = (seed >> 24) as u8;
            if let Ok(m) = Manifest::from_payload(bad) {
                // Whatever decoded is walkable.
                for name in [&b"."[..], b"sub", b"sub/deeper"] {
                    if let Some(d) = m.dir(name) {
                        let all: Vec<_> = m.entries(d).collect();
                        assert!(all.len() <= d.count as usize + 1);
                        entry_errors += all.iter().filter(|e| e.is_err()).count();
                    }
                }
            }
        }
    }
    // Some mutations only show when a directory's entries are read.
    assert!(entry_errors > 0);
    // A forged huge directory count fails at once.
    let mut forged = good.clone();
    forged[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(Manifest::from_payload(forged).is_err());
}

#[test]
fn options_hash_ignores_output_but_not_selection() {
    let mut a = Options {
        recursive: true,
        ..Default::default()
    };
    let base = options_hash(&a);
    a.verbose = 2;
    a.itemize = 1;
    a.stats = true;
    a.trust_mtime = true;
    assert_eq!(options_hash(&a), base);
    a.recursive = false;
    assert_ne!(options_hash(&a), base);
    let b = Options {
        recursive: true,
        one_file_system: 1,
        ..Default::default()
    };
    assert_ne!(options_hash(&b), base);
}

#[test]
fn a_recording_equal_to_the_old_record_is_carried_and_nothing_is_written() {
    let old = Manifest::from_payload(sample()).unwrap();
    let rec = Recorder::default();
    record_sample(&rec, Some(&old));
    let mut complete = HashSet::new();
    complete.insert(b"sub".to_vec());
    assert!(rec.dirs.lock().unwrap().is_empty(), "all carried");
    assert_eq!(rec.payload(Some(&old), &HashSet::new(), &complete), None);
    // A changed complete flag is written.
    let rec2 = Recorder::default();
    for name in [&b"sub"[..], b".", b"sub/deeper"] {
        rec2.carry(old.dir(name).unwrap());
    }
    let p = rec2
        .payload(Some(&old), &HashSet::new(), &HashSet::new())
        .unwrap();
    let m = Manifest::from_payload(p).unwrap();
    assert_eq!(m.dir(b"sub").unwrap().flags & format::D_COMPLETE, 0);
    assert_eq!(m.entries(m.dir(b"sub").unwrap()).count(), 4);
}

#[test]
fn plain_summary_counts_the_leading_non_directories() {
    let m = Manifest::from_payload(sample()).unwrap();
    let d = m.dir(b"sub").unwrap();
    // a, b (files) and l (a symlink) lead; z (a directory) ends the run.
    assert_eq!(d.plain.kinds, [2, 1, 0, 0]);
    assert_eq!(d.plain.size, 7 + 14 + 21);
    let rest: Vec<_> = m.entries_after_plain(d).map(Result::unwrap).collect();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].name, b"z");
    // A skipped entry ends the run too: what follows it is decoded.
    let rec = Recorder::default();
    let mut r = DirRecording::new(b".", &state(1), Some(&state(2)), 3);
    r.entry(&entry_rec(
        b"f",
        false,
        false,
        &meta(1, 0o100644),
        None,
        None,
    ));
    r.entry(&entry_rec(
        b"s",
        false,
        true,
        &meta(2, 0o020644),
        None,
        None,
    ));
    r.entry(&entry_rec(
        b"t",
        false,
        false,
        &meta(3, 0o100644),
        None,
        None,
    ));
    rec.add(r, None);
    let p = rec.payload(None, &HashSet::new(), &HashSet::new()).unwrap();
    let m = Manifest::from_payload(p).unwrap();
    let d = m.dir(b".").unwrap();
    assert_eq!((d.plain.kinds, d.plain.size), ([1, 0, 0, 0], 7));
    let rest: Vec<_> = m.entries_after_plain(d).map(|e| e.unwrap().name).collect();
    assert_eq!(rest, [&b"s"[..], b"t"]);
}

#[test]
fn a_dirty_directory_with_hashes_is_kept_stale_and_never_carried() {
    let record = |rec: &Recorder, old: Option<&Manifest>| {
        let mut d = DirRecording::new(b"h", &state(1), Some(&state(2)), 1);
        let src = meta(1, 0o100644);
        let mut e = entry_rec(b"f", false, false, &src, Some(&src), None);
        e.hash = Some(hashed());
        d.entry(&e);
        rec.add(d, old);
    };
    let rec = Recorder::default();
    record(&rec, None);
    rec.add(DirRecording::new(b"x", &state(1), None, 0), None);
    let dirty: HashSet<Vec<u8>> = [b"h".to_vec(), b"x".to_vec()].into();
    let complete: HashSet<Vec<u8>> = [b"h".to_vec()].into();
    let m = Manifest::from_payload(rec.payload(None, &dirty, &complete).unwrap()).unwrap();
    // Without hashes a dirty directory goes; with them it stays, stale
    // (never complete), its hashes readable.
    assert!(m.dir(b"x").is_none());
    let h = m.dir(b"h").unwrap();
    assert_eq!(
        h.flags & (format::D_STALE | format::D_COMPLETE),
        format::D_STALE
    );
    assert_eq!(m.hash(b"h", b"f"), Some(hashed()));
    // The same listing, clean this time, is not taken as equal to the stale
    // record: it is written again without the mark.
    let rec2 = Recorder::default();
    record(&rec2, Some(&m));
    assert_eq!(rec2.dirs.lock().unwrap().len(), 1, "not carried");
    let p = rec2.payload(Some(&m), &HashSet::new(), &HashSet::new());
    let m2 = Manifest::from_payload(p.unwrap()).unwrap();
    assert_eq!(m2.dir(b"h").unwrap().flags & format::D_STALE, 0);
}

/// The lean check (a counting `--trust-mtime` run) covers every byte that
/// run reads: a change to a header or to an entry after a plain run is
/// refused at load, a change inside a plain run makes that directory's full
/// entries unreadable, and such a manifest's records are not copied into a
/// new one under fresh sums.
#[test]
fn lean_check_covers_what_a_counting_run_reads_and_copies_nothing_unchecked() {
    let h = Header {
        pair: [1; 32],
        opts: [2; 32],
    };
    let payload = sample();
    let file = format::seal(&h, &payload);
    let open = |f: &[u8], lean| open_file(crate::sys::mmap::FileBytes::Owned(f.to_vec()), &h, lean);
    let m = open(&file, true).unwrap();
    let d = m.dir(b"sub").unwrap().clone();
    // Plain runs are not read when only the lean sum was checked; the rest is.
    assert!(m.entries(&d).next().unwrap().is_err());
    assert_eq!(
        m.entries_after_plain(&d).next().unwrap().unwrap().name,
        b"z"
    );
    assert!(m.checked());
    assert_eq!(open(&file, false).unwrap().entries(&d).count(), 4);
    let at = format::HEADER_LEN;
    // A byte inside sub's plain run (its first entry's name, "a").
    let plain_byte = at + d.entries.start + 3;
    assert_eq!(file[plain_byte], b'a');
    // A byte of sub's header (its source mtime) and of the entry after the
    // plain run (z's name).
    let head_byte = at + d.flags_at + 1;
    let after_byte = at + d.entries.start + d.plain.len as usize + 3;
    assert_eq!(file[after_byte], b'z');
    for (i, lean_ok) in [(plain_byte, true), (head_byte, false), (after_byte, false)] {
        let mut bad = file.clone();
        bad[i] ^= 0x04;
        assert!(open(&bad, false).is_err(), "full check, byte {i}");
        assert_eq!(open(&bad, true).is_ok(), lean_ok, "lean check, byte {i}");
    }
    // Trusted (carried) records of a manifest whose plain run was damaged
    // are left out of the next one; fresh records are kept.
    let mut bad = file.clone();
    bad[plain_byte] ^= 0x04;
    let m = open(&bad, true).unwrap();
    assert!(!m.checked());
    let rec = Recorder::default();
    rec.carry(m.dir(b"sub").unwrap());
    rec.add(DirRecording::new(b"new", &state(3), None, 0), None);
    let p = rec
        .payload(Some(&m), &HashSet::new(), &HashSet::new())
        .unwrap();
    let next = Manifest::from_payload(p).unwrap();
    assert!(next.dir(b"sub").is_none());
    assert!(next.dir(b"new").is_some());
    // With an intact file the same records are copied.
    let m = open(&file, true).unwrap();
    let rec = Recorder::default();
    rec.carry(m.dir(b"sub").unwrap());
    rec.add(DirRecording::new(b"new", &state(3), None, 0), None);
    let p = rec
        .payload(Some(&m), &HashSet::new(), &HashSet::new())
        .unwrap();
    let next = Manifest::from_payload(p).unwrap();
    assert_eq!(next.entries(next.dir(b"sub").unwrap()).count(), 4);
}
