#!/usr/bin/env bash
# Install the differential tests' oracle, rsync 3.5.0, as /usr/local/bin/rsync.
#
# Why: the tests compare resync with rsync 3.5 (README, compat-tests/README.md).
# Debian bookworm's package is rsync 3.2.7, which differs from 3.5 in output and
# exit codes (and its 3.2.7-1+deb12u5 rejects every --delete-missing-args
# operand with "invalid file mode 00"); trixie's 3.5.0 package needs glibc 2.38.
# So this builds trixie's source (the orig tarball, checked against the
# SHA-256 in Debian's signed Sources index) against bookworm's libraries.
# /usr/local/bin comes before /usr/bin in PATH, for ssh sessions too, so the
# remote side of the tests' `rsync -e ssh` runs are 3.5.0 as well.
set -euo pipefail

version=3.5.0
tarball="rsync_${version}+ds1.orig.tar.xz"
sha256=d5de0c8a95b00e0f50038ba04526bcbd5fe4f3ff97b4035bb97b084398bfbb60
url="http://deb.debian.org/debian/pool/main/r/rsync/$tarball"

if /usr/local/bin/rsync --version 2>/dev/null | grep "version $version " >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "rsync-oracle.sh: rsync $version is needed as the test oracle; run as root to build it" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc make curl xz-utils \
  libpopt-dev libacl1-dev libattr1-dev libzstd-dev liblz4-dev libxxhash-dev \
  libssl-dev zlib1g-dev >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsS --retry 3 -o "$work/$tarball" "$url"
echo "$sha256  $work/$tarball" | sha256sum -c --quiet
tar -C "$work" -xf "$work/$tarball"
cd "$work/rsync-$version"
# The +ds1 repack drops the bundled zlib and popt; configure still wants
# their placeholder files.
mkdir -p zlib popt
touch zlib/dummy.in popt/dummy.in
./configure --prefix=/usr/local --with-included-popt=no --with-included-zlib=no \
  --disable-md2man >configure.log 2>&1 || { tail -n 20 configure.log >&2; exit 1; }
make -j"$(nproc)" >make.log 2>&1 || { tail -n 20 make.log >&2; exit 1; }
install -m 755 rsync /usr/local/bin/rsync
/usr/local/bin/rsync --version | sed -n 1p
