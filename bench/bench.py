#!/usr/bin/env python3
"""Helper for bench/run.sh: corpus generation, edits, verification, timed runs, report.

Subcommands:
  gen-small DIR NDIRS NFILES SEED   deterministic tree of small files (+1 symlink per dir)
  edit DIR PERCENT SEED             deterministically modify PERCENT% of regular files
  verify SRC DST                    compare two trees (exit 1 on any difference)
  run                               run all scenarios (configured via environment, see run.sh)
"""

import hashlib
import json
import os
import random
import shutil
import stat
import statistics
import subprocess
import sys
import threading
import time

# --------------------------------------------------------------------------- corpus


def gen_small(root, ndirs, nfiles, seed):
    """ndirs dirs x nfiles files, sizes 0..16 KiB, mixed modes, ns mtimes, one symlink per dir."""
    rng = random.Random(seed)
    tmp = root + ".tmp"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    base = 1_600_000_000
    dir_times = []
    for d in range(ndirs):
        dpath = os.path.join(tmp, f"d{d:04d}")
        os.mkdir(dpath)
        for f in range(nfiles):
            size = rng.randint(0, 16384)
            p = os.path.join(dpath, f"f{f:03d}")
            with open(p, "wb") as fh:
                fh.write(rng.randbytes(size))
            mode = 0o755 if f % 17 == 0 else (0o600 if f % 23 == 0 else 0o644)
            os.chmod(p, mode)
            t = (base + rng.randint(0, 10**8)) * 10**9 + rng.randint(0, 10**9 - 1)
            os.utime(p, ns=(t, t))
        link = os.path.join(dpath, "link")
        os.symlink("f000", link)
        t = (base + rng.randint(0, 10**8)) * 10**9 + rng.randint(0, 10**9 - 1)
        os.utime(link, ns=(t, t), follow_symlinks=False)
        dir_times.append((dpath, (base + rng.randint(0, 10**8)) * 10**9 + rng.randint(0, 10**9 - 1)))
    for dpath, t in dir_times:
        os.utime(dpath, ns=(t, t))
    os.utime(tmp, ns=(base * 10**9 + 123456789,) * 2)
    os.rename(tmp, root)


def regular_files(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in sorted(filenames):
            p = os.path.join(dirpath, n)
            if stat.S_ISREG(os.lstat(p).st_mode):
                out.append(p)
    return out


def edit_tree(root, percent, seed):
    """Modify percent% of regular files (deterministic): even ones get bytes appended,
    odd ones get their first bytes rewritten in place (same size); all get mtime bumped
    by 1.000000007 s. Directory mtimes are left as they were."""
    files = regular_files(root)
    k = max(1, round(len(files) * percent / 100.0))
    chosen = random.Random(seed).sample(files, k)
    for i, p in enumerate(chosen):
        st = os.lstat(p)
        if i % 2 == 0 or st.st_size == 0:
            with open(p, "ab") as fh:
                fh.write(b"resync-bench edit\n")
        else:
            n = min(16, st.st_size)
            with open(p, "r+b") as fh:
                head = fh.read(n)
                fh.seek(0)
                fh.write(bytes(b ^ 0xFF for b in head))
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_007))
    return k, len(files)


# --------------------------------------------------------------------------- verify


def file_hash(path):
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha1").hexdigest()


def manifest(root):
    """rel path -> (type, perm bits, uid, gid, mtime_ns, size, sha1 / link target).
    The root directory itself is included as '.'."""
    out = {}
    stack = [(root, ".")]
    st = os.lstat(root)
    out["."] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                st.st_mtime_ns, None, None)
    while stack:
        path, rel = stack.pop()
        with os.scandir(path) as it:
            for e in it:
                r = e.name if rel == "." else rel + "/" + e.name
                st = e.stat(follow_symlinks=False)
                fmt = stat.S_IFMT(st.st_mode)
                size = extra = None
                if fmt == stat.S_IFREG:
                    size = st.st_size
                    extra = file_hash(e.path)
                elif fmt == stat.S_IFLNK:
                    extra = os.readlink(e.path)
                elif fmt == stat.S_IFDIR:
                    stack.append((e.path, r))
                elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
                    extra = st.st_rdev
                out[r] = (fmt, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                          st.st_mtime_ns, size, extra)
    return out


FIELDS = ("type", "mode", "uid", "gid", "mtime_ns", "size", "content/target")


def compare(src_man, dst_root, limit=10):
    """Return a list of human-readable differences (empty = identical)."""
    if not os.path.isdir(dst_root):
        return [f"destination {dst_root} does not exist or is not a directory"]
    try:
        dst_man = manifest(dst_root)
    except OSError as e:
        return [f"cannot walk destination: {e}"]
    problems = []
    missing = sorted(set(src_man) - set(dst_man))
    extra = sorted(set(dst_man) - set(src_man))
    if missing:
        problems.append(f"{len(missing)} missing in destination, e.g. {missing[:5]}")
    if extra:
        problems.append(f"{len(extra)} extra in destination, e.g. {extra[:5]}")
    nbad = 0
    for rel in sorted(set(src_man) & set(dst_man)):
        a, b = src_man[rel], dst_man[rel]
        if a != b:
            nbad += 1
            if nbad <= limit:
                diffs = [f"{FIELDS[i]}: {a[i]!r} != {b[i]!r}" for i in range(len(a)) if a[i] != b[i]]
                problems.append(f"{rel}: " + "; ".join(diffs))
    if nbad > limit:
        problems.append(f"... {nbad} differing entries in total")
    return problems


# --------------------------------------------------------------------------- runs


def env_list(name, default):
    v = os.environ.get(name, "").strip()
    return [x.strip() for x in (v or default).split(",") if x.strip()]


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rmtree(path):
    if os.path.lexists(path):
        subprocess.run(["rm", "-rf", "--", path], check=True)


def sync_disk():
    subprocess.run(["sync"], check=True)


class FreshExt4:
    """A new ext4 (mkfs defaults, so with a journal) on a loop device, made again
    before every on-disk run (BENCH_DISK=fresh-ext4, the default).

    Why: `/` on this VM is ext4 *without a journal*. There, ext4 avoids reusing
    inodes deleted in the last ~30 s and checks every free inode it meets in the
    buffer cache, so right after the previous run's `rm -rf` of 100k files each
    new file costs a scan over the deleted ones (and two threads creating files
    contend on the device's buffer lock). The disk rows then measured how many
    files the previous contestant had left to delete: resync 21-35 s vs rsync
    7-10 s on the small corpus, against ~2-4 s on a clean filesystem. A fresh
    filesystem gives every contestant the same empty, journaled ext4.
    """

    def __init__(self, out, size):
        self.img = os.path.join(out, "disk.img")
        self.mnt = os.path.join(out, "mnt")
        self.size = size
        self.dev = None

    def fresh(self):
        self.close()
        os.makedirs(self.mnt, exist_ok=True)
        with open(self.img, "wb") as fh:  # drop the old blocks, then a sparse image
            fh.truncate(self.size)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1", self.img],
                       check=True)
        # Direct I/O: the image's blocks are not cached a second time on `/`.
        self.dev = subprocess.run(["losetup", "-f", "--show", "--direct-io=on", self.img], check=True,
                                  capture_output=True, text=True).stdout.strip()
        subprocess.run(["mount", self.dev, self.mnt], check=True)

    def close(self):
        if os.path.ismount(self.mnt):
            subprocess.run(["umount", self.mnt], check=True)
        if self.dev:
            subprocess.run(["losetup", "-d", self.dev], check=False)
            self.dev = None
        if os.path.exists(self.img):
            os.remove(self.img)


# Every scenario, in the order they run (see bench/README.md).
SCENARIOS = ["initial-tmpfs", "initial-disk", "noop-tmpfs", "update-1pct-tmpfs",
             "noop-manifest-tmpfs", "noop-trust-mtime-tmpfs", "checksum-noop-tmpfs",
             "checksum-noop-manifest-tmpfs", "delta-1g-tmpfs"]

# Extra flags per scenario, the same for resync and rsync.
SCENARIO_FLAGS = {
    "checksum-noop-tmpfs": ["-c"],
    "checksum-noop-manifest-tmpfs": ["-c"],
    "delta-1g-tmpfs": ["--no-whole-file", "--stats"],
}


def make_delta_files(w):
    """The 1 GiB delta scenario's files (seeded): w/old, the basis, and
    w/src/big.bin = 4 KiB of new bytes + old with 256 runs of 41,943 bytes
    (1% of the file) rewritten at random offsets."""
    import random
    n = 1 << 30
    rng = random.Random(42)
    old = bytearray(b"".join(rng.randbytes(1 << 24) for _ in range(n >> 24)))
    with open(os.path.join(w, "old"), "wb") as f:
        f.write(old)
    run = n // 100 // 256
    for _ in range(256):
        at = rng.randrange(0, n - run)
        old[at:at + run] = rng.randbytes(run)
    os.makedirs(os.path.join(w, "src"), exist_ok=True)
    with open(os.path.join(w, "src", "big.bin"), "wb") as f:
        f.write(rng.randbytes(4096))
        f.write(old)
    # In the past, so the quick check sends the file.
    t = 978307200  # 2001-01-01
    os.utime(os.path.join(w, "old"), (t, t))


def literal_bytes(logfile):
    """The `Literal data:` figure of a --stats run's log, or None."""
    try:
        with open(logfile, errors="replace") as fh:
            for line in fh:
                if line.startswith("Literal data:"):
                    return int(line.split(":")[1].split()[0].replace(",", ""))
    except OSError:
        pass
    return None


class Runner:
    def __init__(self):
        self.candidate = os.environ["BENCH_RESYNC"]
        self.shm = os.environ["BENCH_SHM"]
        self.out = os.environ["BENCH_OUT"]
        self.repeat = int(os.environ.get("BENCH_REPEAT", "5"))
        self.warmup = int(os.environ.get("BENCH_WARMUP", "1"))
        self.timeout = float(os.environ.get("BENCH_TIMEOUT", "3600"))
        self.disk_sleep = float(os.environ.get("BENCH_DISK_SLEEP", "2"))
        self.disk_mode = os.environ.get("BENCH_DISK", "fresh-ext4")
        if self.disk_mode not in ("fresh-ext4", "dir"):
            raise SystemExit(f"BENCH_DISK must be fresh-ext4 or dir, not {self.disk_mode}")
        self.fresh_fs = FreshExt4(self.out, int(os.environ.get("BENCH_DISK_GB", "8")) << 30)
        self.scenarios = env_list("BENCH_SCENARIOS", ",".join(SCENARIOS))
        self.contestants = env_list("BENCH_CONTESTANTS", "resync,rsync,cp")
        self.logdir = os.path.join(self.out, "logs")
        os.makedirs(self.logdir, exist_ok=True)
        self.results = []  # dicts
        self.failures = []
        self.src_manifests = {}
        self.delta_size = 0  # bytes of the delta scenario's source file

    MANIFEST_SCENARIOS = ("noop-manifest-tmpfs", "noop-trust-mtime-tmpfs", "checksum-noop-manifest-tmpfs")

    def cmd(self, who, src, dst, scen="", flags=()):
        if who == "resync":
            # The rescan manifest lives in the bench's tmpfs (never ~/.cache);
            # the other scenarios measure resync without one.
            if scen in self.MANIFEST_SCENARIOS:
                extra = ["--manifest-dir", os.path.join(self.shm, "manifests")]
                if scen == "noop-trust-mtime-tmpfs":
                    extra.append("--trust-mtime")
            else:
                extra = ["--no-manifest"]
            return [self.candidate, "-a", *extra, *flags, src + "/", dst + "/"]
        if who == "rsync":
            return ["rsync", "-a", *flags, src + "/", dst + "/"]
        if who == "cp":
            return ["cp", "-a", src, dst]  # dst does not exist: cp creates it as a copy of src
        raise ValueError(who)

    def timed(self, argv, logfile):
        """Run argv under /usr/bin/time; return (rc, wall seconds, peak RSS KiB)."""
        tfile = logfile + ".time"
        full = ["/usr/bin/time", "-f", "%e %M", "-o", tfile, "--"] + argv
        with open(logfile, "wb") as lf:
            t0 = time.perf_counter()
            p = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                                 start_new_session=True)
            # Popen.wait(timeout=...) polls with sleeps of up to 50 ms, which
            # quantised short runs (0.218 s, 0.268 s ...); block in wait() and
            # let a timer thread kill the run on timeout instead.
            expired = threading.Event()

            def kill():
                expired.set()
                os.killpg(p.pid, 9)  # the whole contestant process tree

            timer = threading.Timer(self.timeout, kill)
            timer.start()
            rc = p.wait()
            wall = time.perf_counter() - t0
            timer.cancel()
            if expired.is_set():
                rc = f"timeout after {self.timeout:g}s"
        rss = None
        try:
            with open(tfile) as fh:
                last = fh.read().strip().splitlines()[-1].split()
                rss = int(last[-1])
        except (OSError, IndexError, ValueError):
            pass
        return rc, wall, rss

    def src_manifest(self, src):
        if src not in self.src_manifests:
            t0 = time.perf_counter()
            self.src_manifests[src] = manifest(src)
            log(f"manifest of {src}: {len(self.src_manifests[src])} entries in {time.perf_counter() - t0:.1f}s")
        return self.src_manifests[src]

    def one_run(self, scen, corpus, who, rnd, src, dst, prepare, on_disk):
        prepare()
        if on_disk:
            sync_disk()
            time.sleep(self.disk_sleep)
        tag = f"{scen}.{corpus}.{who}.{'warmup' if rnd < 0 else rnd}"
        logfile = os.path.join(self.logdir, tag + ".log")
        argv = self.cmd(who, src, dst, scen, SCENARIO_FLAGS.get(scen, ()))
        rc, wall, rss = self.timed(argv, logfile)
        if on_disk:
            sync_disk()  # untimed: flush so the next run starts from a clean disk state
        status = "ok"
        problems = []
        if rc != 0:
            status = "FAILED"
            problems.append(f"exit code {rc}: {' '.join(argv)}")
            try:
                with open(logfile, errors="replace") as fh:
                    tail = fh.read()[-1500:]
                if tail.strip():
                    problems.append("output tail:\n" + tail)
            except OSError:
                pass
        problems += compare(self.src_manifest(src), dst)
        if status == "ok" and problems:
            status = "FAILED"
        log(f"{tag}: {status} {wall:.3f}s rss={rss}KiB" + ("" if rnd >= 0 else " (warm-up, not counted)"))
        rec = dict(scenario=scen, corpus=corpus, contestant=who, round=rnd, rc=rc, wall=wall,
                   rss_kib=rss, status=status, problems=problems, argv=argv,
                   literal=literal_bytes(logfile) if "--stats" in argv else None)
        self.results.append(rec)
        if status != "ok":
            self.failures.append(rec)
            for p in problems:
                log(f"  VERIFY/EXIT: {p}")
        return status

    def scenario(self, scen, corpus, src, edited):
        shm_dst = os.path.join(self.shm, "dst")
        disk_dst = os.path.join(self.out, "dst")
        who_all = [w for w in self.contestants if w != "cp" or scen.startswith("initial")]
        if scen == "initial-tmpfs":
            dst, s, on_disk = shm_dst, src, False
            prepare = lambda: rmtree(dst)
        elif scen == "initial-disk" and self.disk_mode == "fresh-ext4":
            dst, s, on_disk = os.path.join(self.fresh_fs.mnt, "dst"), src, True
            prepare = self.fresh_fs.fresh
        elif scen == "initial-disk":
            dst, s, on_disk = disk_dst, src, True
            prepare = lambda: rmtree(dst)
        elif scen in ("noop-tmpfs", "checksum-noop-tmpfs"):
            dst, s, on_disk = shm_dst, src, False
            state = {"ready": False}

            def prepare():
                # identical copy made once (untimed); re-made if a run left it different
                if not state["ready"]:
                    rmtree(dst)
                    subprocess.run(["cp", "-a", src, dst], check=True)
                    state["ready"] = True
        elif scen in self.MANIFEST_SCENARIOS:
            # Second no-op: the identical copy is made once, then one untimed
            # resync run (after the copy's directory times have aged past the
            # manifest's 100 ms race window, and its file ctimes past -c's
            # 1 s one) writes the manifest that every timed resync run
            # finds. rsync runs its normal no-op.
            dst, s, on_disk = shm_dst, src, False
            state = {"ready": False}
            mdir = os.path.join(self.shm, "manifests")

            def prepare():
                if not state["ready"]:
                    rmtree(dst)
                    rmtree(mdir)
                    subprocess.run(["cp", "-a", src, dst], check=True)
                    time.sleep(1.2 if scen.startswith("checksum") else 0.5)
                    first = self.cmd("resync", src, dst, scen, SCENARIO_FLAGS.get(scen, ()))
                    subprocess.run(first, check=True, stdout=subprocess.DEVNULL)
                    if not os.listdir(mdir):
                        raise SystemExit(f"{scen}: no manifest written by {' '.join(first)}")
                    state["ready"] = True
        elif scen == "update-1pct-tmpfs":
            # destination = fresh copy of the original source; sync the edited source into it
            dst, s, on_disk = shm_dst, edited, False

            def prepare():
                rmtree(dst)
                subprocess.run(["cp", "-a", src, dst], check=True)
        elif scen == "delta-1g-tmpfs":
            # src = the edited 1 GiB file; dst = a fresh copy of the old one per run
            dst, s, on_disk = shm_dst, src, False

            def prepare():
                rmtree(dst)
                os.makedirs(dst)
                subprocess.run(["cp", "-p", os.path.join(edited, "old"), os.path.join(dst, "big.bin")],
                               check=True)
        else:
            raise SystemExit(f"unknown scenario {scen}")
        log(f"== scenario {scen} / corpus {corpus}: {', '.join(who_all)}")
        rounds = list(range(-self.warmup, 0)) + list(range(self.repeat))
        for rnd in rounds:
            for who in who_all:
                st = self.one_run(scen, corpus, who, rnd, s, dst, prepare, on_disk)
                if (scen in ("noop-tmpfs", "checksum-noop-tmpfs") or scen in self.MANIFEST_SCENARIOS) \
                        and st != "ok":
                    state["ready"] = False
        rmtree(dst)
        if on_disk:
            self.fresh_fs.close()
            sync_disk()

    def run(self):
        corpora = json.loads(os.environ["BENCH_CORPORA_JSON"])  # [[name, staged src, edited src], ...]
        for name, src, edited in corpora:
            # manifests are taken before any contestant runs, so source modification is caught
            self.src_manifest(src)
            if "update-1pct-tmpfs" in self.scenarios:
                self.src_manifest(edited)
            for scen in self.scenarios:
                if scen != "delta-1g-tmpfs":
                    self.scenario(scen, name, src, edited)
            # a candidate must never modify its source
            for s in (src, edited):
                if s in self.src_manifests:
                    probs = compare(self.src_manifests[s], s)
                    if probs:
                        rec = dict(scenario="source-unchanged", corpus=name, contestant="?", round=0,
                                   status="FAILED", problems=probs)
                        self.failures.append(rec)
                        log(f"SOURCE {s} WAS MODIFIED: {probs[:3]}")
            self.src_manifests.clear()
        if "delta-1g-tmpfs" in self.scenarios:
            # Not per corpus: one generated 1 GiB file (kept in tmpfs for the scenario).
            w = os.path.join(self.shm, "delta")
            rmtree(w)
            os.makedirs(w)
            t0 = time.perf_counter()
            make_delta_files(w)
            log(f"delta files made in {time.perf_counter() - t0:.1f}s")
            src = os.path.join(w, "src")
            self.delta_size = os.path.getsize(os.path.join(src, "big.bin"))
            self.src_manifest(src)
            self.scenario("delta-1g-tmpfs", "1gib-file", src, w)
            rmtree(w)
        with open(os.path.join(self.out, "last-run.json"), "w") as fh:
            json.dump(self.results, fh, indent=1)
        return self.report()

    # ----------------------------------------------------------------------- report

    def report(self):
        def cell(vals):
            return f"{statistics.median(vals):.3f}" if vals else "–"

        rows = []
        detail = []
        keys = []
        for r in self.results:
            k = (r["scenario"], r["corpus"])
            if k not in keys:
                keys.append(k)
        for scen, corpus in keys:
            meds, rss, spread, failed = {}, {}, {}, {}
            for who in ("resync", "rsync", "cp"):
                rs = [r for r in self.results if r["scenario"] == scen and r["corpus"] == corpus
                      and r["contestant"] == who and r["round"] >= 0]
                if not rs:
                    meds[who] = None
                    continue
                failed[who] = sum(r["status"] != "ok" for r in rs)
                ok = [r for r in rs if r["status"] == "ok"]
                walls = [r["wall"] for r in ok]
                meds[who] = statistics.median(walls) if walls else None
                rsss = [r["rss_kib"] for r in ok if r["rss_kib"] is not None]
                rss[who] = max(rsss) if rsss else None
                if walls:
                    spread[who] = f"{min(walls):.3f}–{max(walls):.3f} (n={len(walls)})"

            def t(who):
                if who not in failed:
                    return "–"
                s = f"{meds[who]:.3f} s" if meds[who] is not None else ""
                if failed[who]:
                    s = (s + " " if s else "") + f"**FAILED {failed[who]}×**"
                return s

            def ratio(num, den):
                if meds.get(num) and meds.get(den):
                    return f"{meds[num] / meds[den]:.2f}×"
                return "–"

            def mb(who):
                v = rss.get(who)
                return f"{v / 1024:.1f}" if v else "–"

            rows.append(f"| {scen} | {corpus} | {t('resync')} | {t('rsync')} | {t('cp')} | "
                        f"{ratio('rsync', 'resync')} | {ratio('cp', 'resync')} | {mb('resync')} / {mb('rsync')} |")
            detail.append(f"| {scen} | {corpus} | " + " | ".join(spread.get(w, "–") for w in ("resync", "rsync", "cp")) + " |")
        out = []
        out.append("| scenario | corpus | resync median | rsync median | cp median | rsync ÷ resync | cp ÷ resync | peak RSS MiB resync / rsync |")
        out.append("|---|---|---|---|---|---|---|---|")
        out += rows
        out.append("")
        out.append("Min–max wall seconds of the successful timed runs:")
        out.append("")
        out.append("| scenario | corpus | resync | rsync | cp |")
        out.append("|---|---|---|---|---|")
        out += detail
        lit = [r for r in self.results if r.get("literal") is not None and r["round"] >= 0
               and r["status"] == "ok"]
        if lit:
            out.append("")
            out.append("Literal data (`--stats`) of the delta scenarios, median over the timed runs:")
            out.append("")
            out.append("| scenario | corpus | resync literal bytes | rsync literal bytes | resync % of source | rsync % of source |")
            out.append("|---|---|---|---|---|---|")
            for scen, corpus in keys:
                vals = {}
                for who in ("resync", "rsync"):
                    v = [r["literal"] for r in lit if (r["scenario"], r["corpus"], r["contestant"]) == (scen, corpus, who)]
                    vals[who] = int(statistics.median(v)) if v else None
                if all(v is None for v in vals.values()):
                    continue
                size = self.delta_size

                def num(v):
                    return f"{v:,}" if v is not None else "–"

                def pct(v):
                    return f"{100 * v / size:.2f}%" if v is not None and size else "–"
                out.append(f"| {scen} | {corpus} | {num(vals['resync'])} | {num(vals['rsync'])} | "
                           f"{pct(vals['resync'])} | {pct(vals['rsync'])} |")
        if self.failures:
            out.append("")
            out.append(f"**{len(self.failures)} FAILED run(s)** (exit code or verification):")
            out.append("")
            for f in self.failures:
                first = f["problems"][0].splitlines()[0] if f["problems"] else "?"
                rnd = "warm-up" if f["round"] < 0 else f"round {f['round']}"
                out.append(f"- {f['scenario']} / {f['corpus']} / {f['contestant']} ({rnd}): {first}")
        text = "\n".join(out) + "\n"
        with open(os.path.join(self.out, "table.md"), "w") as fh:
            fh.write(text)
        print(text)
        return 1 if self.failures else 0


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    cmd = sys.argv[1]
    if cmd == "gen-small":
        gen_small(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "edit":
        k, n = edit_tree(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
        print(f"edited {k} of {n} regular files")
    elif cmd == "verify":
        probs = compare(manifest(sys.argv[2]), sys.argv[3])
        for p in probs:
            print(p)
        sys.exit(1 if probs else 0)
    elif cmd == "run":
        sys.exit(Runner().run())
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        raise
    except Exception:
        import traceback
        traceback.print_exc()
        sys.exit(3)  # harness error, distinct from 1 = some run failed
