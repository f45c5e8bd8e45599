#!/usr/bin/env python3
"""LAN/WAN benchmark: rsync and resync over ssh and over their daemons, through
the emulated link of bench/lan/netns.sh, like for like (-z against -z).

    bench/lan/run.py [--profile lan|wan] [--scenarios full,noop,mod1,big1g,logs,big4g]
                     [--contestants rsync-ssh,rsync-daemon,resync-ssh,resync-daemon]
                     [--compress off,on] [--repeat N] [--corpus linux|PATH] [--results FILE|-]

Every run: the client side runs in namespace rsbench-c, the server side
(sshd, rsync --daemon) in rsbench-s; source and destination trees are on
/dev/shm. Each timed run's exit code is checked, its result tree compared with
the source (type, mode, owner, mtime ns, size, content, link target), and the
bytes that crossed the link counted (both directions, from the client
interface's counters). Contestants alternate within each round (A B C D, A B C D, ...).
The report (medians; ratios against the rsync contestant of the same
transport and compression) is prepended to bench/lan/RESULTS.md.

A resync contestant whose transport is not implemented yet is probed once on a
tiny tree; if it fails, the table says so with its message instead of a time.

Scenarios:
  full   copy of the corpus into an empty destination
  noop   the same again (nothing to do)
  mod1   the destination holds the corpus, the source is it with 1% of files
         edited (bench.py edit DIR 1 7)
  big1g  a 1 GiB file with 1% scattered edits and 4 KiB prepended, onto the old version
  logs   copy of 256 MiB of generated, compressible log files
  big4g  a 4 GiB file of random (incompressible) bytes into an empty destination; the
         report adds each row's payload rate against the link's rate
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import bench  # noqa: E402  (bench/bench.py: manifest, compare, edit_tree)

OUT = os.path.join(HERE, "..", "out", "lan")
# Where things are; bench/docker_network_benchmark.sh overrides them through
# the environment for its two containers (no namespaces there).
CLIENT_EXEC = os.environ.get("LAN_CLIENT_EXEC", "ip netns exec rsbench-c").split()
IFACE = os.environ.get("LAN_IFACE", "rsb-c")  # the client's end of the link
SIP = os.environ.get("LAN_SERVER", "10.203.7.2")
SSH = os.environ.get("LAN_SSH", os.path.join(OUT, "ssh"))
RSYNCD_PORT = int(os.environ.get("LAN_RSYNCD_PORT", "8730"))
RESYNCD_PORT = int(os.environ.get("LAN_RESYNCD_PORT", "8731"))
SHM = os.environ.get("LAN_DST", "/dev/shm/resync-lan")  # the daemons' [bench] module path
WORK = os.environ.get("LAN_WORK", "/dev/shm/resync-lan-src")


def log(msg):
    print(f"[lan {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(argv, **kw):
    return subprocess.run(argv, check=True, **kw)


def wire_bytes():
    """Bytes that crossed the client's end of the link so far, both directions."""
    total = 0
    for kind in ("tx_bytes", "rx_bytes"):
        out = subprocess.run(CLIENT_EXEC + ["cat", f"/sys/class/net/{IFACE}/statistics/{kind}"],
                             check=True, capture_output=True, text=True).stdout
        total += int(out)
    return total


def command(who, compress, src, dst_rel, resync):
    """argv for one contestant; dst_rel is the destination below SHM."""
    z = ["-z"] if compress else []
    ssh = SSH
    if who == "rsync-ssh":
        return ["rsync", "-a"] + z + ["-e", ssh, src + "/", f"root@{SIP}:{SHM}/{dst_rel}/"]
    if who == "rsync-daemon":
        return ["rsync", "-a"] + z + [src + "/", f"rsync://{SIP}:{RSYNCD_PORT}/bench/{dst_rel}/"]
    if who == "resync-ssh":
        return [resync, "-a"] + z + ["-e", ssh, f"--rsync-path={resync}", src + "/",
                                     f"root@{SIP}:{SHM}/{dst_rel}/"]
    if who == "resync-daemon":
        return [resync, "-a"] + z + [src + "/", f"resync://{SIP}:{RESYNCD_PORT}/bench/{dst_rel}/"]
    raise SystemExit(f"unknown contestant {who}")


def in_client(argv):
    return CLIENT_EXEC + argv


def probe(who, resync):
    """None if the contestant works on a tiny tree, else its error message."""
    src = os.path.join(WORK, "probe")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "f"), "w") as fh:
        fh.write("probe\n")
    bench.rmtree(os.path.join(SHM, "probe"))
    p = subprocess.run(in_client(command(who, False, src, "probe", resync)), capture_output=True, text=True,
                       timeout=120)
    if p.returncode != 0:
        return f"exit {p.returncode}: " + (p.stderr.strip().splitlines() or ["(no message)"])[0]
    if bench.compare(bench.manifest(src), os.path.join(SHM, "probe")):
        return "probe copy differs from its source"
    return None


def make_big(work):
    """old/big.bin (1 GiB) and src/big.bin (1% scattered edits + 4 KiB prepended): the files of
    bench/run.sh's delta-1g-tmpfs scenario (bench.make_delta_files), the old one as a tree."""
    w = os.path.join(work, "big")
    old, new = os.path.join(w, "old-tree"), os.path.join(w, "src")
    if os.path.exists(os.path.join(old, "big.bin")):
        return old, new
    os.makedirs(w, exist_ok=True)
    bench.make_delta_files(w)
    os.makedirs(old, exist_ok=True)
    os.link(os.path.join(w, "old"), os.path.join(old, "big.bin"))  # same inode, same mtime
    return old, new


BIG4G = 4 << 30


def make_big4g(work):
    """big4g/random.bin: 4 GiB from /dev/urandom (incompressible), made once."""
    d = os.path.join(work, "big4g")
    f = os.path.join(d, "random.bin")
    if os.path.exists(f) and os.path.getsize(f) == BIG4G:
        return d
    os.makedirs(d, exist_ok=True)
    tmp = f + ".tmp"
    with open("/dev/urandom", "rb") as src, open(tmp, "wb") as out:
        left = BIG4G
        while left:
            b = src.read(min(left, 16 << 20))
            out.write(b)
            left -= len(b)
    os.rename(tmp, f)
    return d


def make_logs(work):
    """256 MiB of log lines in 64 files (compresses ~8-10x, like real logs)."""
    d = os.path.join(work, "logs")
    if os.path.isdir(d):
        return d
    rng = random.Random(7)
    tmp = d + ".tmp"
    os.makedirs(tmp, exist_ok=True)
    hosts = [f"web{i:02d}" for i in range(12)]
    paths = ["/", "/api/v1/items", "/login", "/static/app.js", "/img/logo.png", "/api/v1/users", "/health"]
    agents = ["Mozilla/5.0 (X11; Linux x86_64)", "curl/7.88.1", "Go-http-client/1.1", "python-requests/2.31"]
    t = 1_700_000_000
    for i in range(64):
        lines = []
        size = 0
        while size < 4 << 20:
            t += rng.randrange(0, 3)
            line = (f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(t))}Z {rng.choice(hosts)} "
                    f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)} "
                    f"\"GET {rng.choice(paths)}?id={rng.randrange(100000)} HTTP/1.1\" "
                    f"{rng.choice((200, 200, 200, 304, 404, 500))} {rng.randrange(100, 90000)} "
                    f"\"{rng.choice(agents)}\" rt={rng.random():.4f}\n")
            lines.append(line)
            size += len(line)
        with open(os.path.join(tmp, f"access-{i:02d}.log"), "w") as fh:
            fh.writelines(lines)
    os.rename(tmp, d)
    return d


class Runner:
    def __init__(self, args):
        self.args = args
        self.resync = os.path.abspath(args.resync)
        self.rows = []  # dicts
        self.unavailable = {}

    def timed(self, who, compress, src, dst_rel):
        argv = in_client(command(who, compress, src, dst_rel, self.resync))
        logf = os.path.join(OUT, "logs", f"{who}-{'z' if compress else 'n'}-{dst_rel.replace('/', '_')}.log")
        w0 = wire_bytes()
        t0 = time.monotonic()
        with open(logf, "w") as lf:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                               timeout=self.args.timeout)
        wall = time.monotonic() - t0
        return p.returncode, wall, wire_bytes() - w0, argv

    def scenario(self, scen, contestants, variants):
        a = self.args
        corpus_src = os.path.join(WORK, "corpus")
        edited = os.path.join(WORK, "edited")
        if scen in ("full", "noop", "mod1"):
            src_for_run, base = corpus_src, None
            if scen == "mod1":
                src_for_run, base = edited, corpus_src
            elif scen == "noop":
                base = corpus_src
        elif scen == "big1g":
            old, new = make_big(WORK)
            src_for_run, base = new, old
        elif scen == "logs":
            src_for_run, base = make_logs(WORK), None
        elif scen == "big4g":
            src_for_run, base = make_big4g(WORK), None
        else:
            raise SystemExit(f"unknown scenario {scen}")
        expect = bench.manifest(src_for_run)
        for rnd in range(a.repeat):
            for who in contestants:
                for compress in variants:
                    key = (who, compress)
                    if who in self.unavailable:
                        continue
                    dst_rel = f"{who}-{'z' if compress else 'n'}"
                    dst = os.path.join(SHM, dst_rel)
                    bench.rmtree(dst)
                    if base is not None:
                        sh(["cp", "-a", base, dst])
                    rc, wall, wire, argv = self.timed(who, compress, src_for_run, dst_rel)
                    problems = [] if rc == 0 else [f"exit code {rc}"]
                    problems += bench.compare(expect, dst)
                    status = "ok" if not problems else "FAIL"
                    log(f"{scen} {who}{' -z' if compress else ''} round {rnd + 1}: {wall:.3f} s, "
                        f"{wire / 1e6:.1f} MB on the wire, {status}")
                    for pr in problems[:5]:
                        log(f"  {pr}")
                    self.rows.append(dict(scenario=scen, who=who, compress=compress, round=rnd, wall=wall,
                                          wire=wire, rc=rc, status=status, problems=problems[:10],
                                          argv=argv))
                    bench.rmtree(dst)

    def run(self):
        a = self.args
        os.makedirs(os.path.join(OUT, "logs"), exist_ok=True)
        if a.profile != "external":
            profile = open(os.path.join(OUT, "profile")).read().strip()
            if profile != a.profile:
                sh([os.path.join(HERE, "netns.sh"), "shape", a.profile])
        os.makedirs(WORK, exist_ok=True)
        os.makedirs(SHM, exist_ok=True)
        contestants = a.contestants.split(",")
        for who in contestants:
            if who.startswith("resync"):
                why = probe(who, self.resync)
                if why:
                    self.unavailable[who] = why
                    log(f"{who}: not available: {why}")
        scenarios = a.scenarios.split(",")
        if any(s in ("full", "noop", "mod1") for s in scenarios):
            corpus_src = os.path.join(WORK, "corpus")
            edited = os.path.join(WORK, "edited")
            marker = os.path.join(WORK, "corpus.from")
            origin = os.path.realpath(a.corpus)
            if not os.path.isdir(corpus_src) or open(marker).read() != origin:
                log(f"copying {a.corpus} into {corpus_src}")
                bench.rmtree(corpus_src)
                bench.rmtree(edited)
                # realpath: bench/corpus/linux may be a symlink, which cp -a would copy as one.
                sh(["cp", "-a", origin, corpus_src])
                with open(marker, "w") as fh:
                    fh.write(origin)
            if "mod1" in scenarios and not os.path.isdir(edited):
                sh(["cp", "-a", corpus_src, edited])
                k, n = bench.edit_tree(edited, 1, 7)
                log(f"edited {k} of {n} files")
        variants = [v == "on" for v in a.compress.split(",")]
        self.start_load = open("/proc/loadavg").read().split()[:3]
        for scen in scenarios:
            self.scenario(scen, contestants, variants)

    def report(self):
        a = self.args
        lines = [f"## LAN benchmark {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} — profile `{a.profile}`",
                 "",
                 f"- Command: `bench/lan/run.py --profile {a.profile} --scenarios {a.scenarios} "
                 f"--contestants {a.contestants} --compress {a.compress} --repeat {a.repeat}`",
                 f"- Corpus: `{a.corpus}`; load average at start {' '.join(self.start_load)}; "
                 f"{os.cpu_count()} CPUs; rsync {rsync_version()}",
                 "- Link: " + {"lan": "tbf 1 Gbit/s each way, nfq-delay 0.1 ms per side (≈0.5 ms user-to-user RTT)",
                               "wan": "tbf 50 Mbit/s each way, nfq-delay 19.85 ms per side (≈40 ms RTT)",
                               "none": "no shaping",
                               "external": "set up outside this script (docker: tc netem)"}[a.profile],
                 "- Times are medians of the timed rounds; MB = bytes through the client's end of the link, both directions; "
                 "ratio = this row's time ÷ the rsync row of the same transport and compression.",
                 "- `-z no` is each program's default: rsync sends raw, resync compresses adaptively "
                 "(zstd level 1 chunks while its compressing workers keep up; `--no-compress` would turn it off). "
                 "`-z yes` is `-z` on both (zlib 6 for rsync, zstd 1 for resync).",
                 "",
                 "| scenario | contestant | -z | time (s) | MB on the wire | ratio | status |",
                 "|---|---|---|---|---|---|---|"]
        med = {}
        for r in self.rows:
            med.setdefault((r["scenario"], r["who"], r["compress"]), []).append(r)
        for (scen, who, comp), rs in med.items():
            t = statistics.median(x["wall"] for x in rs)
            w = statistics.median(x["wire"] for x in rs)
            st = "ok" if all(x["status"] == "ok" for x in rs) else "FAIL"
            peer = ("rsync-" + who.split("-", 1)[1], comp)
            ratio = ""
            if who.startswith("resync") and (scen,) + peer in med:
                pt = statistics.median(x["wall"] for x in med[(scen,) + peer])
                ratio = f"{t / pt:.2f}×"
            lines.append(f"| {scen} | {who} | {'yes' if comp else 'no'} | {t:.3f} | {w / 1e6:.1f} | {ratio} | {st} |")
        for who, why in self.unavailable.items():
            lines.append(f"| all | {who} | – | – | – | – | not available: {why} |")
        rate = {"lan": 1000, "wan": 50}.get(a.profile)
        big = [(k, rs) for k, rs in med.items() if k[0] == "big4g"]
        if big:
            lines += ["", "`big4g` payload rate (4 GiB ÷ median time)"
                      + (f", against the link's tbf rate of {rate} Mbit/s:" if rate else ":"), ""]
            for (scen, who, comp), rs in big:
                mbit = BIG4G * 8 / statistics.median(x["wall"] for x in rs) / 1e6
                share = f" = {mbit / rate:.1%} of the link" if rate else ""
                lines.append(f"- {who}{' -z' if comp else ''}: {mbit:.0f} Mbit/s{share}")
        lines.append("")
        text = "\n".join(lines) + "\n"
        print(text)
        with open(os.path.join(OUT, "last-run.json"), "w") as fh:
            json.dump(self.rows, fh, indent=1)
        if a.results != "-":
            old = open(a.results).read() if os.path.exists(a.results) else "# LAN benchmark results\n\n"
            head, _, rest = old.partition("\n\n")
            with open(a.results, "w") as fh:
                fh.write(head + "\n\n" + text + "\n" + rest)
        return all(r["status"] == "ok" for r in self.rows)


def rsync_version():
    return subprocess.run(["rsync", "--version"], capture_output=True, text=True).stdout.split()[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="lan", choices=["lan", "wan", "none", "external"],
                    help="link profile of bench/lan/netns.sh; external = the link is set up elsewhere")
    ap.add_argument("--scenarios", default="full,noop,mod1,big1g,logs")
    ap.add_argument("--contestants", default="rsync-ssh,rsync-daemon,resync-ssh,resync-daemon")
    ap.add_argument("--compress", default="off,on", help="off, on, or off,on")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--corpus", default=os.path.join(HERE, "..", "corpus", "linux"))
    ap.add_argument("--resync", default=os.path.join(HERE, "..", "..", "target", "release", "resync"))
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--timeout", type=int, default=1800)
    a = ap.parse_args()
    if a.profile != "external" and not os.path.exists(os.path.join(OUT, "profile")):
        sh([os.path.join(HERE, "netns.sh"), "up", a.profile])
    r = Runner(a)
    r.run()
    sys.exit(0 if r.report() else 1)


if __name__ == "__main__":
    main()
