#!/usr/bin/env bash
# Whole-program benchmark: resync vs rsync vs cp. See bench/README.md.
#
# Environment:
#   RESYNC=/path/to/binary   candidate to benchmark (default: build target/release/resync)
#   BENCH_CORPUS=linux,small corpora to use
#   BENCH_QUICK=1            smoke mode: linux/drivers/net only + 10k small files, 1 repeat
#   BENCH_REPEAT=N           timed rounds per scenario (default 5; 1 with BENCH_QUICK=1)
#   BENCH_WARMUP=N           untimed warm-up rounds per scenario (default 1)
#   BENCH_SCENARIOS=a,b      subset of initial-tmpfs,initial-disk,noop-tmpfs,update-1pct-tmpfs,
#                            noop-manifest-tmpfs,noop-trust-mtime-tmpfs,checksum-noop-tmpfs,
#                            checksum-noop-manifest-tmpfs,delta-1g-tmpfs
#   BENCH_CONTESTANTS=a,b    subset of resync,rsync,cp
#   BENCH_RESULTS=path       where to prepend the report (default bench/RESULTS.md; "-" = don't write)
#   BENCH_TIMEOUT=secs       per-run timeout (default 3600)
#   BENCH_DISK_SLEEP=secs    pause after `sync` before each on-disk run (default 2)
#   BENCH_DISK=fresh-ext4|dir  initial-disk target: a new loop-mounted ext4 per run (default) or bench/out/dst
#   BENCH_DISK_GB=n          size of the sparse ext4 image for fresh-ext4 (default 8)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
CORPUS_DIR=$HERE/corpus
OUT=$HERE/out
SHM=/dev/shm/resync-bench
LOCK=/tmp/resync-bench.lock

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

# Record the exact command before anything changes the environment.
CMDLINE=""
for v in RESYNC BENCH_CORPUS BENCH_QUICK BENCH_REPEAT BENCH_WARMUP BENCH_SCENARIOS \
         BENCH_CONTESTANTS BENCH_RESULTS BENCH_TIMEOUT BENCH_DISK_SLEEP BENCH_DISK BENCH_DISK_GB; do
    if [[ -n "${!v+x}" ]]; then CMDLINE+="$v=${!v} "; fi
done
CMDLINE+="bench/run.sh${*:+ $*}"

exec 9>"$LOCK"
flock -n 9 || die "another bench/run.sh is running (lock $LOCK)"

cleanup() {
    rm -rf -- "$SHM" "$OUT/dst" 2>/dev/null || true
    if mountpoint -q "$OUT/mnt" 2>/dev/null; then
        dev=$(findmnt -n -o SOURCE "$OUT/mnt")
        umount "$OUT/mnt" || true
        [[ $dev == /dev/loop* ]] && losetup -d "$dev" 2>/dev/null || true
    fi
    rm -f -- "$OUT/disk.img"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

QUICK=${BENCH_QUICK:-0}
[[ "$QUICK" == 0 || "$QUICK" == 1 ]] || die "BENCH_QUICK must be 0 or 1"
export BENCH_REPEAT=${BENCH_REPEAT:-$([[ $QUICK == 1 ]] && echo 1 || echo 5)}
export BENCH_WARMUP=${BENCH_WARMUP:-1}
CORPORA=${BENCH_CORPUS:-linux,small}
RESULTS=${BENCH_RESULTS:-$HERE/RESULTS.md}

command -v rsync >/dev/null || die "rsync not installed"
[[ -x /usr/bin/time ]] || { log "installing GNU time"; apt-get install -y time >/dev/null; }
command -v python3 >/dev/null || die "python3 not installed"

# ---------------------------------------------------------------- 1. candidate
if [[ ",${BENCH_CONTESTANTS:-resync}," != *,resync,* ]]; then
    CANDIDATE=/bin/false   # never executed
    CANDIDATE_NOTE="resync not run (\`BENCH_CONTESTANTS=$BENCH_CONTESTANTS\`): baseline numbers only"
    TITLE_NOTE=" — baseline only (no resync)"
elif [[ -n "${RESYNC:-}" ]]; then
    CANDIDATE=$(readlink -f -- "$RESYNC") || die "RESYNC=$RESYNC not found"
    CANDIDATE_NOTE="custom \`RESYNC=$RESYNC\` (not a build of this tree — harness validation / external binary)"
    TITLE_NOTE=" — custom RESYNC=$RESYNC"
else
    log "building resync (cargo build --release)"
    (cd "$ROOT" && cargo build --release --quiet)
    CANDIDATE=${CARGO_TARGET_DIR:-$ROOT/target}/release/resync
    CANDIDATE_NOTE="\`target/release/resync\` built from this tree"
    TITLE_NOTE=""
fi
[[ -x "$CANDIDATE" ]] || die "candidate $CANDIDATE is not executable"
export BENCH_RESYNC=$CANDIDATE

# Machine description, sampled before the corpora fill tmpfs.
MACHINE=$(
    echo "- Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
    echo "- Memory at start (\`free -g\`): $(free -g | awk '/^Mem:/ {print "total " $2 " GiB, used " $3 ", free " $4 ", buff/cache " $6 ", available " $7}')"
    if [[ ${BENCH_DISK:-fresh-ext4} == fresh-ext4 ]]; then
        disk="a new ext4 per run (\`mkfs.ext4\` defaults, with journal, ${BENCH_DISK_GB:-8} GiB sparse image in \`bench/out\` on a direct-I/O loop device) on $(df --output=fstype "$HERE" | tail -1) $(df --output=source "$HERE" | tail -1)"
    else
        disk="\`bench/out\` ($(df --output=fstype "$HERE" | tail -1) on $(df --output=source "$HERE" | tail -1), options $(awk -v m="$(df --output=target "$HERE" | tail -1)" '$2 == m {print $4}' /proc/mounts | head -1))"
    fi
    echo "- Filesystems: tmpfs runs in \`/dev/shm\` ($(stat -f -c %T /dev/shm)), disk runs on $disk; sources staged in tmpfs"
    echo "- $(rsync --version | head -1 | tr -s ' '); $(cp --version | head -1)"
)

# ---------------------------------------------------------------- 2. corpora
mkdir -p "$CORPUS_DIR" "$OUT/logs"
rm -f "$OUT"/logs/*.log "$OUT"/logs/*.time

prepare_linux() {
    [[ -d "$CORPUS_DIR/linux" ]] && return 0
    local tarball=/usr/src/linux-source-6.1.tar.xz
    if [[ ! -f $tarball ]]; then
        log "installing linux-source-6.1"
        apt-get install -y linux-source-6.1 >/dev/null || die "apt-get install linux-source-6.1 failed"
    fi
    log "extracting $tarball into bench/corpus/linux (once)"
    rm -rf -- "$CORPUS_DIR/linux.tmp"
    mkdir -p "$CORPUS_DIR/linux.tmp"
    tar -xJf "$tarball" -C "$CORPUS_DIR/linux.tmp" --strip-components=1
    mv -- "$CORPUS_DIR/linux.tmp" "$CORPUS_DIR/linux"
}

prepare_small() { # name ndirs
    [[ -d "$CORPUS_DIR/$1" ]] && return 0
    log "generating bench/corpus/$1 ($2 dirs x 100 files, seed 42)"
    python3 "$HERE/bench.py" gen-small "$CORPUS_DIR/$1" "$2" 100 42
}

rm -rf -- "$SHM"
mkdir -p "$SHM/src" "$SHM/edited"
CORPORA_JSON="["
sep=""
IFS=, read -ra CORPUS_LIST <<<"$CORPORA"
for c in "${CORPUS_LIST[@]}"; do
    case "$c" in
    linux)
        prepare_linux
        if [[ $QUICK == 1 ]]; then name=linux-drivers-net; path=$CORPUS_DIR/linux/drivers/net
        else name=linux; path=$CORPUS_DIR/linux; fi ;;
    small)
        if [[ $QUICK == 1 ]]; then name=small-10k; prepare_small small-10k 100
        else name=small; prepare_small small 1000; fi
        path=$CORPUS_DIR/$name ;;
    *) die "unknown corpus '$c' (known: linux, small)" ;;
    esac
    # Sources live in tmpfs (copied once, untimed) so page-cache reclaim can't skew reads.
    log "staging $name into $SHM/src/$name (+ 1%-edited copy)"
    cp -a -- "$path" "$SHM/src/$name"
    cp -a -- "$path" "$SHM/edited/$name"
    python3 "$HERE/bench.py" edit "$SHM/edited/$name" 1 7 >&2
    CORPORA_JSON+="$sep[\"$name\", \"$SHM/src/$name\", \"$SHM/edited/$name\"]"
    sep=", "
done
CORPORA_JSON+="]"
export BENCH_CORPORA_JSON=$CORPORA_JSON BENCH_SHM=$SHM BENCH_OUT=$OUT

# ---------------------------------------------------------------- 3/4. scenarios + verification
rc=0
rm -f -- "$OUT/table.md"
python3 "$HERE/bench.py" run || rc=$?
[[ $rc -le 1 ]] || die "bench.py crashed (exit $rc)"

# ---------------------------------------------------------------- 5. report
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet HEAD 2>/dev/null || commit+=" (dirty)"
report=$OUT/report.md
{
    echo "## $(date -u '+%Y-%m-%d %H:%M UTC') — resync ${commit}${TITLE_NOTE}$([[ $rc != 0 ]] && echo ' — FAILURES')"
    echo
    echo "- Command: \`$CMDLINE\`"
    echo "- Candidate: $CANDIDATE_NOTE"
    echo "$MACHINE"
    echo "- Rounds: ${BENCH_WARMUP} warm-up + ${BENCH_REPEAT} timed per scenario, contestants alternated; times are wall-clock medians, RSS is the max over the timed runs"
    echo
    cat "$OUT/table.md"
    echo
} >"$report"
cat "$report"

if [[ "$RESULTS" != "-" ]]; then
    marker='<!-- newest results below this line -->'
    if [[ ! -f "$RESULTS" ]] || ! grep -qF -- "$marker" "$RESULTS"; then
        {
            echo "# resync benchmark results"
            echo
            echo "Produced by \`bench/run.sh\` (see \`bench/README.md\`). Newest first."
            echo
            echo "$marker"
            echo
            if [[ -f "$RESULTS" ]]; then cat "$RESULTS"; fi
        } >"$RESULTS.new"
        mv -- "$RESULTS.new" "$RESULTS"
    fi
    python3 - "$RESULTS" "$report" "$marker" <<'EOF'
import sys
path, rep, marker = sys.argv[1:]
text = open(path).read()
new = open(rep).read()
head, _, tail = text.partition(marker)
open(path, "w").write(head + marker + "\n\n" + new + tail.lstrip("\n"))
EOF
    log "report prepended to $RESULTS"
fi

if [[ $rc != 0 ]]; then
    log "FAILED: at least one run exited non-zero or produced a wrong tree (see above, logs in bench/out/logs)"
    exit 1
fi
log "all runs succeeded and verified"
