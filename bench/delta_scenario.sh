#!/usr/bin/env bash
# Delta scenario: a 1 GiB file with 1% scattered edits plus a 4 KiB prepend,
# synced with --no-whole-file onto the old version, resync beside rsync.
#
# Edits: 256 runs of 41,943 bytes (1% of the file in total) rewritten at
# random offsets (seeded), then 4 KiB of new bytes prepended. Each contestant
# gets a fresh copy of the old version as destination (mtime in the past, so
# the quick check sends the file), runs `-a --no-whole-file --stats`
# (`BENCH_REPEAT` rounds, default 3; median reported), its exit code is
# checked and the result compared byte for byte with the source.
#
# Usage: bench/delta_scenario.sh            (work dir: /dev/shm, tmpfs)
#        BENCH_DIR=/some/dir bench/delta_scenario.sh
# Prints a markdown table; exit 1 if any run failed or produced wrong bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
RESYNC=${RESYNC:-}
if [ -z "$RESYNC" ]; then
  cargo build --release --bins -q
  RESYNC=$PWD/target/release/resync
fi
REPEAT=${BENCH_REPEAT:-3}
BASE=${BENCH_DIR:-/dev/shm}
W=$(mktemp -d "$BASE/resync-delta-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT

python3 - "$W" <<'EOF'
import os, random, sys
w = sys.argv[1]
n = 1 << 30
rng = random.Random(42)
old = bytearray(b''.join(rng.randbytes(1 << 24) for _ in range(n >> 24)))
with open(f"{w}/old", "wb") as f:
    f.write(old)
run = n // 100 // 256
for _ in range(256):
    at = rng.randrange(0, n - run)
    old[at:at + run] = rng.randbytes(run)
os.makedirs(f"{w}/src", exist_ok=True)
with open(f"{w}/src/big.bin", "wb") as f:
    f.write(rng.randbytes(4096))
    f.write(old)
EOF
touch -d '2001-01-01' "$W/old"
SIZE=$(stat -c %s "$W/src/big.bin")

fail=0
declare -A TIMES LIT
for round in $(seq "$REPEAT"); do
  for who in resync rsync; do
    rm -rf "$W/dst"; mkdir "$W/dst"
    cp -p "$W/old" "$W/dst/big.bin"
    sync
    if [ "$who" = resync ]; then cmd=("$RESYNC"); else cmd=(rsync); fi
    start=$(date +%s.%N)
    set +e
    "${cmd[@]}" -a --no-whole-file --stats "$W/src/" "$W/dst/" >"$W/out.$who" 2>"$W/err.$who"
    rc=$?
    set -e
    end=$(date +%s.%N)
    if [ $rc -ne 0 ]; then
      echo "$who exited $rc: $(cat "$W/err.$who")" >&2; fail=1
    fi
    if ! cmp -s "$W/src/big.bin" "$W/dst/big.bin"; then
      echo "$who: result differs from the source" >&2; fail=1
    fi
    TIMES[$who]+="$(echo "$end - $start" | bc) "
    LIT[$who]=$(sed -n 's/^Literal data: \([0-9,]*\) bytes/\1/p' "$W/out.$who" | tr -d ,)
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "| contestant | median wall s (n=$REPEAT) | all runs s | literal bytes | literal % of file |"
echo "|---|---|---|---|---|"
for who in resync rsync; do
  m=$(echo "${TIMES[$who]}" | median)
  pct=$(echo "scale=3; 100 * ${LIT[$who]:-0} / $SIZE" | bc)
  printf '| %s | %.2f | %s | %s | %s%% |\n' "$who" "$m" "${TIMES[$who]}" "${LIT[$who]:-?}" "$pct"
done
echo
echo "File: $SIZE bytes in $BASE ($(stat -f -c %T "$BASE")); $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)."
exit $fail
