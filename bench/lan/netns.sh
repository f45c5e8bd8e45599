#!/usr/bin/env bash
# An emulated link between two network namespaces on this machine, with an
# sshd and an rsync daemon on the far side, for bench/lan/run.py.
#
#   bench/lan/netns.sh up [lan|wan|none]   create (or re-shape) the link, start the servers
#   bench/lan/netns.sh shape lan|wan|none  change only the rate and delay
#   bench/lan/netns.sh down                stop everything, delete the namespaces
#   bench/lan/netns.sh status              print the link, the qdiscs and the servers
#
# Layout: namespace rsbench-c (client, 10.203.7.1) and rsbench-s (server,
# 10.203.7.2) joined by the veth pair rsb-c/rsb-s. Profiles:
#   lan  1 Gbit/s each way (tbf), 0.25 ms one-way delay per side = 0.5 ms RTT
#   wan  50 Mbit/s each way, 20 ms one-way delay per side = 40 ms RTT
#   none no shaping, no delay
# The kernel here has no netem, so the delay comes from bench/lan/delay
# (nfq-delay: iptables NFQUEUE on each side's INPUT chain, packets held in user
# space); the rate from tbf on each veth's egress. Both namespaces see the same
# filesystems as the host, so source and destination trees live on /dev/shm.
#
# Servers in rsbench-s: OpenSSH on 10.203.7.2:2222 (own host key, root login
# with a throwaway key, both in bench/out/lan/), and `rsync --daemon` on
# 10.203.7.2:8730 with module [bench] = /dev/shm/resync-lan (read-write,
# uid/gid root, chroot: without it rsync rewrites symlink targets, which fails
# the tree check), and `resync --daemon` (TLS 1.3 with a throwaway
# certificate; the client pins it on first use) on 10.203.7.2:8731 with the
# same module.
# Traffic stays inside these two namespaces.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/../out/lan
C=rsbench-c S=rsbench-s
CIP=10.203.7.1 SIP=10.203.7.2
SSH_PORT=2222 RSYNCD_PORT=8730 RESYNCD_PORT=8731
# The resync binary for the daemon (LAN_RESYNC, else this checkout's release build).
RESYNC=${LAN_RESYNC:-$HERE/../../target/release/resync}
DELAY_BIN=$HERE/delay/target/release/nfq-delay

die() { echo "netns.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, tc, iptables)"

need_tools() {
    local need=()
    command -v iptables-legacy >/dev/null || need+=(iptables)
    [ -x /usr/sbin/sshd ] || need+=(openssh-server)
    command -v ssh >/dev/null || need+=(openssh-client)
    command -v rsync >/dev/null || need+=(rsync)
    command -v tc >/dev/null || need+=(iproute2)
    if [ ${#need[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    if [ ! -x "$DELAY_BIN" ] || [ "$HERE/delay/src/main.rs" -nt "$DELAY_BIN" ]; then
        cargo build --release -q --manifest-path "$HERE/delay/Cargo.toml"
    fi
}

in_c() { ip netns exec "$C" "$@"; }
in_s() { ip netns exec "$S" "$@"; }

stop_pid() { # pidfile
    if [ -f "$1" ]; then
        local pid
        pid=$(cat "$1")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$1"
    fi
}

shape() { # profile
    local rate delay_us burst limit
    case "$1" in
        lan) rate=1gbit delay_us=100 burst=256k limit=4mb ;;
        wan) rate=50mbit delay_us=19850 burst=64k limit=2mb ;;
        none) rate="" delay_us=0 ;;
        *) die "unknown profile $1 (lan, wan, none)" ;;
    esac
    stop_pid "$OUT/delay-c.pid"
    stop_pid "$OUT/delay-s.pid"
    for ns in "$C" "$S"; do
        local dev=rsb-${ns#rsbench-}
        ip netns exec "$ns" tc qdisc del dev "$dev" root 2>/dev/null || true
        ip netns exec "$ns" iptables-legacy -F INPUT
        if [ -n "$rate" ]; then
            ip netns exec "$ns" tc qdisc add dev "$dev" root tbf rate "$rate" burst "$burst" limit "$limit"
        fi
        if [ "$delay_us" -gt 0 ]; then
            ip netns exec "$ns" iptables-legacy -A INPUT -i "$dev" -j NFQUEUE --queue-num 0 --queue-bypass
            local tag=${ns#rsbench-}
            ip netns exec "$ns" nohup chrt -f 50 "$DELAY_BIN" 0 "$delay_us" >"$OUT/delay-$tag.log" 2>&1 &
            echo $! >"$OUT/delay-$tag.pid"
        fi
    done
    echo "$1" >"$OUT/profile"
}

start_sshd() {
    [ -f "$OUT/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$OUT/ssh_host_ed25519_key"
    [ -f "$OUT/client_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$OUT/client_key"
    cp "$OUT/client_key.pub" "$OUT/authorized_keys"
    cat >"$OUT/sshd_config" <<EOF
ListenAddress $SIP
Port $SSH_PORT
HostKey $OUT/ssh_host_ed25519_key
PidFile $OUT/sshd.pid
AuthorizedKeysFile $OUT/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100
MaxSessions 100
EOF
    mkdir -p /run/sshd
    in_s /usr/sbin/sshd -f "$OUT/sshd_config"
    cat >"$OUT/ssh" <<EOF
#!/bin/sh
# ssh into the benchmark server namespace (used as rsync/resync -e).
exec ssh -F /dev/null -i $OUT/client_key -p $SSH_PORT -o StrictHostKeyChecking=no \\
    -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR "\$@"
EOF
    chmod +x "$OUT/ssh"
}

start_rsyncd() {
    mkdir -p /dev/shm/resync-lan
    cat >"$OUT/rsyncd.conf" <<EOF
pid file = $OUT/rsyncd.pid
address = $SIP
port = $RSYNCD_PORT
uid = root
gid = root
use chroot = yes
munge symlinks = no
max connections = 20

[bench]
path = /dev/shm/resync-lan
read only = no
EOF
    in_s rsync --daemon --config="$OUT/rsyncd.conf"
}

start_resyncd() {
    [ -x "$RESYNC" ] || { echo "netns.sh: no resync binary at $RESYNC; resync daemon not started" >&2; return 0; }
    if [ ! -f "$OUT/resyncd-cert.pem" ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$OUT/resyncd-key.pem" -out "$OUT/resyncd-cert.pem" -days 3650 \
            -subj /CN=rsbench-s -addext "subjectAltName=IP:$SIP" 2>/dev/null
        # A new certificate: forget the pins of the old one (the client pins on
        # first use and refuses a changed certificate, as ssh does).
        local kh="${XDG_CONFIG_HOME:-$HOME/.config}/resync/known_hosts"
        [ -f "$kh" ] && sed -i "/^$SIP:/d" "$kh"
    fi
    cat >"$OUT/resyncd.conf" <<EOF
pid file = $OUT/resyncd.pid
address = $SIP
port = $RESYNCD_PORT
tls cert = $OUT/resyncd-cert.pem
tls key = $OUT/resyncd-key.pem
uid = root
gid = root
use chroot = yes
max connections = 20

[bench]
path = /dev/shm/resync-lan
read only = no
EOF
    in_s "$RESYNC" --daemon --config="$OUT/resyncd.conf"
}

up() {
    need_tools
    mkdir -p "$OUT"
    if ! ip netns list | grep -qw "$C"; then
        ip netns add "$C"
        ip netns add "$S"
        ip link add rsb-c netns "$C" type veth peer name rsb-s netns "$S"
        in_c ip addr add "$CIP/30" dev rsb-c
        in_s ip addr add "$SIP/30" dev rsb-s
        for ns in "$C" "$S"; do
            ip netns exec "$ns" ip link set lo up
            ip netns exec "$ns" ip link set "rsb-${ns#rsbench-}" up
        done
    fi
    shape "${1:-lan}"
    stop_pid "$OUT/sshd.pid"
    stop_pid "$OUT/rsyncd.pid"
    stop_pid "$OUT/resyncd.pid"
    start_sshd
    start_rsyncd
    start_resyncd
    for _ in $(seq 50); do
        in_c "$OUT/ssh" root@"$SIP" true 2>/dev/null && break
        sleep 0.1
    done
    in_c "$OUT/ssh" root@"$SIP" true || die "ssh into $S does not work"
    in_c rsync "rsync://$SIP:$RSYNCD_PORT/" >/dev/null || die "rsync daemon in $S does not answer"
    echo "netns.sh: up, profile $(cat "$OUT/profile")"
}

down() {
    for f in delay-c delay-s sshd rsyncd resyncd; do stop_pid "$OUT/$f.pid"; done
    ip netns del "$C" 2>/dev/null || true
    ip netns del "$S" 2>/dev/null || true
    rm -rf /dev/shm/resync-lan
}

status() {
    ip netns list
    in_c tc -s qdisc show dev rsb-c 2>/dev/null || true
    in_s tc -s qdisc show dev rsb-s 2>/dev/null || true
    for f in delay-c delay-s sshd rsyncd resyncd; do
        [ -f "$OUT/$f.pid" ] && echo "$f: pid $(cat "$OUT/$f.pid")"
    done
    [ -f "$OUT/profile" ] && echo "profile: $(cat "$OUT/profile")"
}

case "${1:-}" in
    up) up "${2:-lan}" ;;
    shape) need_tools; shape "${2:?profile}" ;;
    down) down ;;
    status) status ;;
    *) die "usage: $0 up [lan|wan|none] | shape PROFILE | down | status" ;;
esac
