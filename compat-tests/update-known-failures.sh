#!/bin/sh
# Regenerate compat-tests/known_failures.txt: run every scenario against the built
# resync (ignoring the current list) and list those that fail. Review the diff before
# committing: a scenario that newly fails is a regression, not something to list.
set -eu
cd "$(dirname "$0")/.."
out="${CARGO_TARGET_DIR:-target}/tmp/compat-failures"
rm -rf "$out"
COMPAT_KNOWN_FAILURES=0 cargo test --test compat -- --skip comparator >/dev/null 2>&1 || true
{
  sed -n '/^#/p;/^#/!q' compat-tests/known_failures.txt
  cat "$out"/*.txt | sort
} > compat-tests/known_failures.txt.new
mv compat-tests/known_failures.txt.new compat-tests/known_failures.txt
echo "$(grep -vc '^#' compat-tests/known_failures.txt) known failures"
