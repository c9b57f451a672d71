#!/usr/bin/env bash
# The GoDAOS demo: a running system (daos_server's embedded default with its
# storage in a temporary directory, dmg creating and querying a pool, a
# daos_agent and the daos tool creating a container, daos_perf writing and
# verifying objects, ranks stopped and started), then one storage target up
# close: benchmark it with vos_perf (beside raw file I/O on the same disk), look
# inside it with ddb the way an administrator would after a crash, and catch a
# corrupted byte with the checksums.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
work=$(mktemp -d "${TMPDIR:-/tmp}/godaos-demo.XXXXXX")
server_pid=
agent_pid=
cleanup() {
	if [ -n "$agent_pid" ]; then kill -TERM "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null || true; fi
	if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "daos_server start (embedded default: 1 engine, 4 targets, storage in $work/system)"
mkdir -p "$work/system"
DAOS_DATA="$work/system" "$BIN"/daos_server start >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do # up to 20 s for the rank to join
	if "$BIN"/dmg system query 2>/dev/null | grep -q Joined; then break; fi
	sleep 0.2
done
grep -E 'engine started|control service started|joined' "$work/server.log" | sed 's/^time=[^ ]* //'

step "dmg system query"
"$BIN"/dmg system query

step "dmg pool create --size 2G tank"
"$BIN"/dmg pool create --size 2G tank

step "dmg pool query tank"
"$BIN"/dmg pool query tank

step "daos_agent (insecure, like the embedded server); a user's view with the daos tool"
export DAOS_AGENT_DRPC_DIR="$work/agent"
"$BIN"/daos_agent start --insecure -l localhost:10001 >"$work/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 1 50); do [ -S "$DAOS_AGENT_DRPC_DIR/daos_agent.sock" ] && break; sleep 0.1; done
"$BIN"/daos pool query tank
"$BIN"/daos cont create tank ckpt --type POSIX
"$BIN"/daos cont list tank

step "daos_perf: objects of class SX through the client API, every byte read back and checked"
"$BIN"/daos_perf --pool tank --class SX --size 4K --count 2000 --concurrency 16 --verify --no-raw 2>/dev/null
"$BIN"/daos_perf --pool tank --class SX --size 1M --count 200 --concurrency 4 --verify 2>/dev/null

step "dmg storage query usage; dmg system stop and start"
"$BIN"/dmg storage query usage
"$BIN"/dmg system stop
"$BIN"/dmg system start

step "dmg pool destroy --recursive tank; stop the agent and the server (SIGTERM: drain, exit 0)"
"$BIN"/dmg pool destroy --recursive tank   # it holds a container
kill -TERM "$agent_pid"
wait "$agent_pid"
agent_pid=
kill -TERM "$server_pid"
wait "$server_pid"
server_pid=
tail -1 "$work/server.log" | sed 's/^time=[^ ]* //'

step "vos_perf: single values and array extents, 64 B (SCM tier) and 1 MiB (NVMe tier), beside raw pwrite/pread"
"$BIN"/vos_perf --dir "$work" --keep --sizes 64,1M --type both --concurrency 4 --count 256 -q 2>"$work/kept"

# the last kept target holds 1 MiB array extents in its data file
target=$(sed -n 's/^vos_perf: kept target //p' "$work/kept" | tail -1)

step "ddb $target ls -r / (what the target holds; array dkeys are chunk numbers)"
{ "$BIN"/ddb "$target" ls -r / || true; } | head -20 || true

step "ddb space: SCM and NVMe tier usage"
"$BIN"/ddb "$target" space

step "ddb log: write-ahead log and checkpoint"
"$BIN"/ddb "$target" log

step "ddb verify: every stored checksum"
"$BIN"/ddb "$target" verify

step "flip one byte in the data file, then verify again"
data=$(ls "$work"/vosperf-*/"$(basename "$target")".data)
printf 'X' | dd of="$data" bs=1 seek=4096 conv=notrunc status=none
"$BIN"/ddb "$target" verify && { echo "corruption went unnoticed" >&2; exit 1; } || true

step "done: the corrupted extent is reported with its container/object/dkey/akey path"
