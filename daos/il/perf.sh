#!/usr/bin/env bash
# The interception library's figures on a local 3-server system (launcher
# local -n 3 --targets 4, as scripts/daos-perf.sh): fio, one job, psync,
# 1 MiB blocks, SIZE written then read through dfuse with and without
# LD_PRELOAD=libpil4dfs.so, and daos_perf SX with one operation in flight
# (what one psync stream is), three rounds, the cases alternating.
#
#   daos/il/perf.sh [DIR [SIZE]]      # DIR: the system's storage (/tmp/il3)
#   daos/il/perf.sh /dev/shm/il3 512M # storage on tmpfs: the software path
#
# BIN (default bin) holds the commands and both libraries (make && make il).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$(cd "${BIN:-bin}" && pwd)
dir=${1:-/tmp/il3}
port=${PORT:-17101}
size=${2:-512M}
[ -e "$dir" ] && { echo "perf.sh: $dir exists" >&2; exit 1; }
hosts="127.0.0.1:$port,127.0.0.1:$((port + 10)),127.0.0.1:$((port + 20))"
mnt=$dir.mnt
cleanup() {
	mountpoint -q "$mnt" 2>/dev/null && fusermount3 -u "$mnt"
	[ -n "${agent_pid:-}" ] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
	$BIN/launcher stop --dir "$dir" >/dev/null 2>&1 || true
	rm -rf "$dir"; rmdir "$mnt" 2>/dev/null || true
}
trap cleanup EXIT
$BIN/launcher local -n 3 --targets 4 --dir "$dir" --port "$port" >/dev/null
export DAOS_AGENT_DRPC_DIR=$dir/agent
$BIN/daos_agent start --insecure -l "127.0.0.1:$port" >"$dir/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 1 50); do [ -S "$DAOS_AGENT_DRPC_DIR/daos_agent.sock" ] && break; sleep 0.1; done
$BIN/dmg -l "$hosts" pool create --size 16G perf >/dev/null
$BIN/daos cont create perf fs --type POSIX >/dev/null
mkdir -p "$mnt"
$BIN/dfuse -m "$mnt" --pool perf --cont fs
bw() { # rw env...
	local rw=$1; shift
	env "$@" fio --name=p --filename="$mnt/f" --rw="$rw" --bs=1M --size="$size" --ioengine=psync --end_fsync=1 --output-format=json 2>/dev/null |
		python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; print("%.0f" % ((j["write"]["bw_bytes"]+j["read"]["bw_bytes"])/2**20))'
}
for round in 1 2 3; do
	for mode in lib dfuse; do
		e=(LD_PRELOAD=)
		[ $mode = lib ] && e=(LD_PRELOAD=$BIN/libpil4dfs.so)
		w=$(bw write "${e[@]}"); r=$(bw read "${e[@]}")
		rm -f "$mnt/f"
		echo "round $round $mode write $w read $r"
	done
	$BIN/daos_perf --pool perf --class SX --size 1M --count 512 --concurrency 1 --no-raw --json |
		python3 -c 'import json,sys; r={x["phase"]:x["mib_per_sec"] for x in json.load(sys.stdin)}; print("round '$round' daos_perf SX x1 write %.0f read %.0f" % (r["update"], r["fetch"]))'
done
