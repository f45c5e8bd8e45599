#!/usr/bin/env bash
# Smoke test of the benchmark runner itself (~2-3 min): small corpora, 1 warm-up + 1 timed
# round, full verification. Does not touch bench/RESULTS.md unless BENCH_RESULTS is set.
# Usage: bench/smoke.sh              # builds target/release/resync
#        RESYNC=/path/to/bin bench/smoke.sh
set -euo pipefail
export BENCH_QUICK=1
export BENCH_RESULTS=${BENCH_RESULTS:--}
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" "$@"
