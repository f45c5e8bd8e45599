#!/usr/bin/env bash
# Run every resync test. Installs what the tests need when missing (rsync 3.5 is
# the oracle of the differential tests, built by ci/rsync-oracle.sh where the
# distribution has another version; acl/attr give getfacl/setfattr for fixtures;
# openssh for the real-ssh handshake test).
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v setfacl >/dev/null 2>&1 || need+=(acl)
command -v setfattr >/dev/null 2>&1 || need+=(attr)
command -v mkfs.xfs >/dev/null 2>&1 || need+=(xfsprogs)
command -v git >/dev/null 2>&1 || need+=(git)
command -v filefrag >/dev/null 2>&1 || need+=(e2fsprogs)
# tests/remote_ssh.rs starts its own sshd on 127.0.0.1.
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "test.sh: missing ${need[*]}; install them (apt-get install -y ${need[*]})" >&2
    exit 1
  fi
fi

if ! rsync --version 2>/dev/null | grep "version 3\.5\." >/dev/null; then
  ./ci/rsync-oracle.sh
  hash -r
fi
rsync --version | sed -n 1p

cargo build --release --bins
cargo test --release --all-targets
