#!/usr/bin/env bash
# Redundancy figures for docs/performance.md, on a local 6-server system
# (2 targets each, storage under TMPDIR): 1 MiB write and read throughput of
# S1, SX, RP_2GX, RP_3GX, EC_2P1GX and EC_4P2GX in one run (S1 beside raw TCP
# and raw pwrite+fdatasync); degraded reads (a server killed between a
# healthy and a degraded fetch of the same objects); the rebuild that
# follows (bytes copied per surviving server per second, from dmg pool
# query); and foreground reads and writes while that rebuild runs.
#
# COUNT (default 400) operations per phase; PORT (default 12001). EC_4P2GX
# goes first in the degraded runs: its 6 shards need 6 fault domains, which
# the pool no longer has once a server is out.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
PORT=${PORT:-12001}
COUNT=${COUNT:-400}
work=$(mktemp -d "${TMPDIR:-/tmp}/godaos-perf-redundancy.XXXXXX")
hosts="127.0.0.1:$PORT,127.0.0.1:$((PORT + 10)),127.0.0.1:$((PORT + 20))"
agent_pid=
cleanup() {
	if [ -n "$agent_pid" ]; then kill -TERM "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null || true; fi
	if [ -f "$work/system/launcher.json" ]; then "$BIN"/launcher stop --dir "$work/system" >/dev/null 2>&1 || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*" >&2; }
dmg() { "$BIN"/dmg -l "$hosts" "$@"; }
export GODAOS_SWIM_FAST=1

"$BIN"/launcher local -n 6 --targets 2 --port "$PORT" --dir "$work/system" >&2
dmg pool create --size 24G tank >/dev/null
export DAOS_AGENT_DRPC_DIR="$work/agent"
"$BIN"/daos_agent start --insecure -l "$hosts" >"$work/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 1 50); do [ -S "$DAOS_AGENT_DRPC_DIR/daos_agent.sock" ] && break; sleep 0.1; done
"$BIN"/daos cont create tank rf0 --properties rd_fac:0 >/dev/null
"$BIN"/daos cont create tank rf2 --properties rd_fac:2 >/dev/null

perf() { "$BIN"/daos_perf --pool tank --size 1M --count "$COUNT" --concurrency 8 --system-dir "$work/system" "$@" 2>/dev/null; }

step "1 MiB updates and fetches per class, healthy (S1 beside raw TCP and raw pwrite+fdatasync)"
perf --cont rf0 --class S1 --raw-dir "$work/system/server0"
for c in ${CLASSES:-SX RP_2GX RP_3GX EC_2P1GX EC_4P2GX}; do perf --cont rf0 --class "$c" --no-raw | tail -n +2; done

# between phases: after the first fetch, kill server $1 and wait until the
# pool map has its targets out, so that the next phases run degraded while
# the rebuild runs
killer() {
	cat <<EOS
if [ "\$DAOS_PERF_AFTER" = fetch ] && [ ! -f "$work/killed-$1" ]; then
	touch "$work/killed-$1"
	"$BIN"/launcher kill --dir "$work/system" --server $1 >/dev/null
	date +%s.%N > "$work/killed-at-$1"
	for _ in \$(seq 1 300); do "$BIN"/dmg -l "$hosts" pool query tank | grep -q ' DOWN' && break; sleep 0.1; done
fi
EOS
}

for pair in ${DEGRADED:-EC_4P2GX:5 RP_3GX:4}; do
	set -- ${pair%%:*} ${pair##*:}
	step "$1: update, healthy fetch, server $2 killed, a fetch through the failover, a degraded fetch, an update during the rebuild"
	perf --cont rf2 --class "$1" --no-raw --phases update,fetch,fetch,fetch,update --between "$(killer "$2")"
	step "the rebuild after server $2's death"
	for _ in $(seq 1 600); do dmg pool query tank | grep -q 'Rebuild busy' || break; sleep 0.5; done
	dmg pool query --watch tank | tail -1
	dmg -j pool query tank | python3 -c '
import json, sys
r = json.load(sys.stdin)["response"]["rebuild"]
secs = max(0.001, (r.get("finished", 0) - r.get("started", 0)) / 1000)
ranks, mib = r.get("ranks", 1), r.get("bytes", 0) / 2**20
print("rebuild: %.0f MiB copied in %.1f s by %d ranks: %.1f MiB/s per surviving server (the leader polls once a second)" % (mib, secs, ranks, mib / secs / ranks))'
done
