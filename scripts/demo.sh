#!/usr/bin/env bash
# The GoDAOS demo: a local 3-server system (launcher local -n 3, storage in a
# temporary directory), dmg creating and querying a pool, a daos_agent and the
# daos tool creating a container, daos_perf writing and verifying objects,
# daos pool autotest, the objects' layout and contents with `daos object`,
# ranks stopped and started; then one storage target up close: benchmark it
# with vos_perf (beside raw file I/O on the same disk), look inside it with ddb
# the way an administrator would after a crash, and catch a corrupted byte
# with the checksums. Everything started is stopped at the end, also on error.
#
# PORT (default 10001) is server 0's control port; servers 1 and 2 use
# PORT+10 and PORT+20 (and the three ports after each).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
PORT=${PORT:-10001}
work=$(mktemp -d "${TMPDIR:-/tmp}/godaos-demo.XXXXXX")
hosts="127.0.0.1:$PORT,127.0.0.1:$((PORT + 10)),127.0.0.1:$((PORT + 20))"
agent_pid=
cleanup() {
	if [ -n "$agent_pid" ]; then kill -TERM "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null || true; fi
	if [ -f "$work/system/launcher.json" ]; then "$BIN"/launcher stop --dir "$work/system" >/dev/null 2>&1 || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
dmg() { "$BIN"/dmg -l "$hosts" "$@"; }
daos() { "$BIN"/daos "$@"; }

step "launcher local -n 3: three daos_server processes (1 engine, 4 targets each), storage in $work/system"
"$BIN"/launcher local -n 3 --port "$PORT" --dir "$work/system"

step "dmg system query"
dmg system query

step "dmg pool create --size 2G tank (on every rank)"
dmg pool create --size 2G tank

step "dmg pool query tank"
dmg pool query tank

step "daos_agent (insecure, like the servers); a user's view with the daos tool"
export DAOS_AGENT_DRPC_DIR="$work/agent"
"$BIN"/daos_agent start --insecure -l "$hosts" >"$work/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 1 50); do [ -S "$DAOS_AGENT_DRPC_DIR/daos_agent.sock" ] && break; sleep 0.1; done
daos pool query tank
daos cont create tank ckpt --type POSIX
daos cont list tank

step "daos_perf: objects of class SX (sharded over all 12 targets) through the client API, every byte read back and checked"
"$BIN"/daos_perf --pool tank --cont ckpt --class SX --size 4K --count 2000 --concurrency 16 --verify --no-raw 2>/dev/null
"$BIN"/daos_perf --pool tank --cont ckpt --class SX --size 1M --count 200 --concurrency 4 --verify 2>/dev/null
"$BIN"/daos_perf --pool tank --cont ckpt --class S1 --size 24 --count 4 --concurrency 1 --verify --no-raw >/dev/null 2>&1

step "daos pool autotest tank: the smoke test a new pool gets"
daos pool autotest tank

step "daos cont list-objects tank ckpt; daos object query and dump"
daos cont list-objects tank ckpt
small= big=
for oid in $(daos cont list-objects tank ckpt); do
	case $(daos object query tank ckpt "$oid" | sed -n 's/^class: \([^,]*\),.*/\1/p') in
	S1) small=$oid ;;
	*) big=$oid ;;
	esac
done
daos object query tank ckpt "$big"
daos object dump tank ckpt "$small"

step "snapshots: take one, write a new object, roll back (the object is gone)"
daos cont create-snap tank ckpt --snap before
daos cont list-snaps tank ckpt
"$BIN"/daos_perf --pool tank --cont ckpt --class S1 --size 24 --count 4 --concurrency 1 --no-raw >/dev/null 2>&1
echo "objects after one more daos_perf run: $(daos cont list-objects tank ckpt | wc -l)"
daos cont rollback tank ckpt --snap before
echo "objects after the rollback:          $(daos cont list-objects tank ckpt | wc -l)"

step "dmg storage query usage; dmg system stop and start"
dmg storage query usage
dmg system stop
dmg system start

step "dmg pool destroy --recursive tank; stop the agent and the servers (SIGTERM: drain, exit 0)"
dmg pool destroy --recursive tank # it holds a container
kill -TERM "$agent_pid"
wait "$agent_pid"
agent_pid=
"$BIN"/launcher stop --dir "$work/system"
for i in 0 1 2; do tail -1 "$work/system/server$i/server.log" | sed 's/^time=[^ ]* //'; done

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
