#!/usr/bin/env bash
# The `server` container of docker/compose.yaml: a throwaway ssh key pair in the
# shared /keys volume, sshd on port 22 for root with that key, rsync --daemon on
# port 873 with module [bench] = /data/dst.
set -euo pipefail
mkdir -p /run/sshd /data/dst /keys
[ -f /keys/client_key ] || ssh-keygen -q -t ed25519 -N '' -f /keys/client_key
ssh-keygen -A >/dev/null
install -d -m 700 /root/.ssh
cp /keys/client_key.pub /root/.ssh/authorized_keys
cat >/etc/rsyncd.conf <<CONF
uid = root
gid = root
use chroot = yes
munge symlinks = no
[bench]
path = /data/dst
read only = no
CONF
rsync --daemon --config=/etc/rsyncd.conf
exec /usr/sbin/sshd -D -o PermitRootLogin=prohibit-password -o PasswordAuthentication=no
