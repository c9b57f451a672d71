#!/usr/bin/env bash
# The failover demo: a local 5-server system (launcher local -n 5, 2 targets
# each, servers 0-2 running the management service), a pool and an RP_3GX
# workload from daos_perf. While it writes, server 4 is killed with SIGKILL:
# SWIM finds it dead, the management service excludes its targets, the
# client places its writes again, and daos_perf finishes with every byte
# verified. Rebuild then copies the lost replicas (dmg pool query --watch);
# the server is restarted and reintegrated, and rebuilt again. Everything
# started is stopped at the end, also on error.
#
# PORT (default 10001) is server 0's control port; server i uses PORT+10*i.
# SWIM runs with fast timeouts (GODAOS_SWIM_FAST=1: dead in about 2 s), as
# the tests do; production timeouts detect a death in about 4-24 s.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
PORT=${PORT:-10001}
work=$(mktemp -d "${TMPDIR:-/tmp}/godaos-failover.XXXXXX")
hosts="127.0.0.1:$PORT,127.0.0.1:$((PORT + 10)),127.0.0.1:$((PORT + 20))"
agent_pid=
perf_pid=
cleanup() {
	if [ -n "$perf_pid" ]; then kill "$perf_pid" 2>/dev/null || true; fi
	if [ -n "$agent_pid" ]; then kill -TERM "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null || true; fi
	if [ -f "$work/system/launcher.json" ]; then "$BIN"/launcher stop --dir "$work/system" >/dev/null 2>&1 || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
dmg() { "$BIN"/dmg -l "$hosts" "$@"; }
daos() { "$BIN"/daos "$@"; }
export GODAOS_SWIM_FAST=1

step "launcher local -n 5 --targets 2: five daos_server processes, storage in $work/system"
"$BIN"/launcher local -n 5 --targets 2 --port "$PORT" --dir "$work/system"
dmg system query

step "dmg pool create --size 4G tank; a container that survives two failed servers (rd_fac:2)"
dmg pool create --size 4G tank
export DAOS_AGENT_DRPC_DIR="$work/agent"
"$BIN"/daos_agent start --insecure -l "$hosts" >"$work/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 1 50); do [ -S "$DAOS_AGENT_DRPC_DIR/daos_agent.sock" ] && break; sleep 0.1; done
daos cont create tank ckpt --properties rd_fac:2

# the rank of server 4, from its control port in the system map
victim_addr="127.0.0.1:$((PORT + 40))"
victim=$(dmg system query | awk -v a="$victim_addr" '$0 ~ a {print $1; exit}')

step "daos_perf: 3000 x 64 KiB updates of an RP_3GX object, then every byte fetched and checked; server 4 (rank $victim) is killed with SIGKILL 2 s in"
"$BIN"/daos_perf --pool tank --cont ckpt --class RP_3GX --size 64K --count 3000 --concurrency 8 --verify --no-raw 2>/dev/null &
perf_pid=$!
sleep 2
"$BIN"/launcher kill --dir "$work/system" --server 4 --signal KILL
wait "$perf_pid"
perf_pid=

step "dmg system query: rank $victim is excluded (SWIM found it dead)"
dmg system query

step "dmg pool query --watch tank: rebuild copies the replicas rank $victim held"
dmg pool query --watch tank
dmg pool query tank

step "launcher restart --server 4; dmg pool reintegrate tank --rank $victim: its targets are emptied and rebuilt"
"$BIN"/launcher restart --dir "$work/system" --server 4
dmg pool reintegrate tank --rank "$victim"
dmg pool query --watch tank
dmg pool query tank

step "daos_perf on the whole pool again: writes and verified reads"
"$BIN"/daos_perf --pool tank --cont ckpt --class RP_3GX --size 64K --count 500 --concurrency 8 --verify --no-raw 2>/dev/null

step "done: stopping everything"
