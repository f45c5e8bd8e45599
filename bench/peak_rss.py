#!/usr/bin/env python3
"""Peak resident memory of a command summed over all its processes.

GNU time's %M is the largest single process; rsync runs a local copy as three
processes (sender, generator, receiver), so the fair comparison with a
one-process tool is the peak of the sum. This samples /proc every few ms and
prints: peak_total_kib peak_single_kib wall_seconds exit_code

usage: bench/peak_rss.py [--interval MS] -- COMMAND...
"""
import os
import subprocess
import sys
import time


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def group_pids(pgid):
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.getpgid(int(name)) == pgid:
                    pids.append(int(name))
            except OSError:
                pass
    return pids


def main():
    args = sys.argv[1:]
    interval = 0.005
    if args[:1] == ["--interval"]:
        interval = float(args[1]) / 1000
        args = args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    t0 = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, start_new_session=True)
    peak_total = peak_single = 0
    while p.poll() is None:
        sizes = [rss_kib(pid) for pid in group_pids(p.pid)]
        peak_total = max(peak_total, sum(sizes))
        peak_single = max([peak_single] + sizes)
        time.sleep(interval)
    print(peak_total, peak_single, round(time.perf_counter() - t0, 3), p.returncode)


if __name__ == "__main__":
    main()
