#!/usr/bin/env bash
# The LAN benchmark of bench/lan/run.py in two Docker containers, with the link
# shaped by `tc netem` (for users with a Docker engine; this project's machines
# have none and use bench/lan/netns.sh, whose kernel lacks netem).
#
#   bench/docker_network_benchmark.sh [lan|wan] [run.py options...]
#
#   lan: netem rate 1gbit, delay 0.25ms on each container's eth0 (0.5 ms RTT)
#   wan: netem rate 50mbit, delay 20ms on each side (40 ms RTT)
# The corpus is bench/corpus/linux (run bench/run.sh once to extract it), copied
# into the shared volume; results are printed and written to bench/out/docker-RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-lan}; shift || true
case "$profile" in
    lan) netem="rate 1gbit delay 0.25ms limit 100000" ;;
    wan) netem="rate 50mbit delay 20ms limit 100000" ;;
    *) echo "usage: $0 lan|wan [run.py options]" >&2; exit 2 ;;
esac
[ -d bench/corpus/linux ] || { echo "bench/corpus/linux missing: run bench/run.sh once" >&2; exit 2; }
dc() { docker compose -f docker/compose.yaml "$@"; }
dc build
dc up -d
trap 'dc down -v' EXIT
for svc in server client; do
    dc exec -T "$svc" bash -c "apt-get update -qq && apt-get install -y -qq iproute2 openssh-client openssh-server python3 >/dev/null"
    dc exec -T "$svc" tc qdisc replace dev eth0 root netem $netem
done
server_ip=$(dc exec -T server hostname -I | awk '{print $1}')
dc cp bench/corpus/linux client:/data/corpus-linux
dc exec -T client bash -c "cat >/usr/local/bin/bench-ssh <<EOS
#!/bin/sh
exec ssh -i /keys/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR \"\\\$@\"
EOS
chmod +x /usr/local/bin/bench-ssh"
mkdir -p bench/out
dc exec -T \
    -e LAN_CLIENT_EXEC=env -e LAN_IFACE=eth0 -e LAN_SERVER="$server_ip" -e LAN_SSH=/usr/local/bin/bench-ssh \
    -e LAN_RSYNCD_PORT=873 -e LAN_DST=/data/dst -e LAN_WORK=/data/work \
    client python3 /resync/bench/lan/run.py --profile external --corpus /data/corpus-linux \
    --resync /usr/local/bin/resync --results /resync/bench/out/docker-RESULTS.md "$@"
dc cp client:/resync/bench/out/docker-RESULTS.md bench/out/docker-RESULTS.md
