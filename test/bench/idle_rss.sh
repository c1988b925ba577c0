#!/bin/bash
# Idle RSS of a configured daemon (link up, no traffic), in a network namespace
# of its own. Usage: test/bench/idle_rss.sh [GOTATUN] [SECONDS]. Needs root, ip, wg.
# PEER=1 also adds a peer. Prints VmRSS/RssAnon/RssFile (KiB) and the top mappings by Rss from smaps.
set -eu
BIN=${1:-$(dirname "$0")/../../dist/gotatun}
WAIT=${2:-5}
NS=rss$$
IFACE=wgr$$
ip netns add "$NS"
cleanup() {
  [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
ip netns exec "$NS" env WG_PROCESS_FOREGROUND=1 "$BIN" "$IFACE" >/dev/null 2>"${LOG:-/dev/null}" &
PID=$!
for _ in $(seq 100); do
  ip netns exec "$NS" test -S "/var/run/wireguard/$IFACE.sock" && break
  sleep 0.1
done
ip netns exec "$NS" wg set "$IFACE" private-key <(wg genkey) listen-port 51820
# PEER=1 adds a peer (no traffic, so no handshake).
[ -n "${PEER:-}" ] && ip netns exec "$NS" wg set "$IFACE" \
  peer "$(wg genkey | wg pubkey)" allowed-ips 10.9.0.2/32 endpoint 127.0.0.1:51821
ip netns exec "$NS" ip link set "$IFACE" up
sleep "$WAIT"
[ -n "${SHOW:-}" ] && ip netns exec "$NS" wg show "$IFACE" >/dev/null && sleep 0.5
# The deno process: the script's PID is env → deno after exec.
grep -E '^(VmRSS|RssAnon|RssFile|RssShmem|VmHWM|Threads)' "/proc/$PID/status" | tr -s ' \t' ' '
awk '
  /^[0-9a-f]+-[0-9a-f]+ / { name = (NF >= 6 ? $6 : "[anon]"); next }
  /^Rss:/ { rss[name] += $2 }
  END { for (n in rss) if (rss[n] >= 256) printf "%8d kB %s\n", rss[n], n }
' "/proc/$PID/smaps" | sort -rn | head -${TOP:-12}
