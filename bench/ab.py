#!/usr/bin/env python3
"""Alternated A/B timing of whole commands, for optimising on a shared, noisy machine.

Usage: bench/ab.py [-n ROUNDS] [--warm DIR]... [--setup CMD] -- NAME=CMD NAME=CMD ...

Each round runs every command once, in order (A B C A B C ...), after the optional
`--setup` shell command (untimed) and after reading every file under each `--warm`
directory's metadata (untimed, `find DIR -ls`, so the dentry and inode caches are hot
as in a rescan). For each command it prints the median, min and max wall time and
the median user+sys CPU seconds (from `wait4`, the whole process tree), then the
ratio of each median to the first command's. Commands run with stdout and stderr
sent to /dev/null and must exit 0.
"""

import os
import statistics
import subprocess
import sys
import time


def run_one(cmd):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}): {cmd}")
    return wall, ru.ru_utime + ru.ru_stime


def main(argv):
    rounds, warm, setup, cmds = 7, [], None, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-n":
            rounds = int(argv[i + 1])
            i += 2
        elif a == "--warm":
            warm.append(argv[i + 1])
            i += 2
        elif a == "--setup":
            setup = argv[i + 1]
            i += 2
        elif a == "--":
            for c in argv[i + 1 :]:
                name, _, cmd = c.partition("=")
                cmds.append((name, cmd))
            break
        else:
            sys.exit(__doc__)
    if not cmds:
        sys.exit(__doc__)
    res = {n: [] for n, _ in cmds}
    for _ in range(rounds):
        for name, cmd in cmds:
            if setup:
                subprocess.run(setup, shell=True, check=True)
            for d in warm:
                subprocess.run(["find", d, "-ls"], stdout=subprocess.DEVNULL, check=True)
            res[name].append(run_one(cmd))
    base = None
    print(f"{'name':<12} {'median s':>9} {'min':>7} {'max':>7} {'cpu s':>7} {'ratio':>6}  (n={rounds})")
    for name, _ in cmds:
        walls = [w for w, _ in res[name]]
        cpus = [c for _, c in res[name]]
        med = statistics.median(walls)
        base = base or med
        print(
            f"{name:<12} {med:9.3f} {min(walls):7.3f} {max(walls):7.3f} "
            f"{statistics.median(cpus):7.3f} {med / base:6.2f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
