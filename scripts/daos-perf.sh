#!/usr/bin/env bash
# The daos_perf matrix of docs/performance.md ("Object I/O: daos_perf"), in one
# command: start a local 3-server system (launcher local -n 3 --targets 4) and
# an insecure daos_agent, run daos_perf for S1 and SX with 1 MiB values (8 in
# flight) and 4 KiB values (64 in flight), update then fetch, each case RUNS
# times (the cases interleaved, a fresh pool per run), print each case's
# median and range, then run each case once more with --verify (every
# fetched byte checked against what was written) and stop everything.
#
#   scripts/daos-perf.sh                         # storage on $TMPDIR (here ext4 on disk)
#   scripts/daos-perf.sh --dir /dev/shm/godaos-perf --pool-size 6G --count-1m 400
#                                                # storage on tmpfs: the software path alone
#
# Every row carries its raw baselines measured in the same run, in blocks
# alternating with the phase's: a Go TCP stream of the same size on loopback,
# and (updates) pwrite+fdatasync of the same size in the servers' storage
# directory, one fdatasync per write and one per batch of as many writes as
# are in flight; and the CPU time per operation of the client, the servers
# and the baselines. The JSON rows of every run are kept (--out) for
# `daos_perf --summarize`.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin}
dir=${TMPDIR:-/tmp}/godaos-perf
port=14001
runs=3
pool_size=24G
count_1m=1000
count_4k=20000
verify=1
out=
usage() {
	sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
	cat <<EOF

Options:
  --dir DIR          the system's directory: configs, logs and storage ($dir)
  --port N           control port of server 0; servers use N..N+23 ($port)
  --runs N           runs of each case ($runs)
  --pool-size SIZE   pool created for each run ($pool_size)
  --count-1m N       1 MiB operations per phase ($count_1m; S1 puts them all on one target)
  --count-4k N       4 KiB operations per phase ($count_4k)
  --no-verify        skip the verified run of each case
  --out FILE         where the runs' JSON rows go (default: DIR.results.json)
EOF
}
while [ $# -gt 0 ]; do
	case "$1" in
	--dir) dir=$2; shift 2 ;;
	--port) port=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--pool-size) pool_size=$2; shift 2 ;;
	--count-1m) count_1m=$2; shift 2 ;;
	--count-4k) count_4k=$2; shift 2 ;;
	--no-verify) verify=; shift ;;
	--out) out=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "daos-perf.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
out=${out:-$dir.results.json}
hosts="127.0.0.1:$port,127.0.0.1:$((port + 10)),127.0.0.1:$((port + 20))"
dmg() { "$BIN"/dmg -l "$hosts" "$@"; }

agent_pid=
started=
cleanup() {
	if [ -n "$agent_pid" ]; then kill -TERM "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null || true; fi
	if [ -n "$started" ]; then
		"$BIN"/launcher stop --dir "$dir" >/dev/null 2>&1 || true
		rm -rf "$dir"
	fi
}
trap cleanup EXIT

if [ -e "$dir" ]; then
	echo "daos-perf.sh: $dir exists; remove it or give another --dir" >&2
	exit 1
fi
echo "== starting 3 servers in $dir ($(df -T "$(dirname "$dir")" | awk 'NR==2 {print $2}'))" >&2
started=1
"$BIN"/launcher local -n 3 --targets 4 --dir "$dir" --port "$port" >&2
export DAOS_AGENT_DRPC_DIR=$dir/agent
"$BIN"/daos_agent start --insecure -l "127.0.0.1:$port" >"$dir/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 1 50); do [ -S "$DAOS_AGENT_DRPC_DIR/daos_agent.sock" ] && break; sleep 0.1; done

cases=("S1 1M 8 $count_1m" "SX 1M 8 $count_1m" "S1 4K 64 $count_4k" "SX 4K 64 $count_4k")
n=0
# one case on a fresh pool (so that every run finds the data files in the same
# state: preallocated, never written); extra daos_perf flags after the case
run_case() {
	local class=$1 size=$2 conc=$3 count=$4
	shift 4
	n=$((n + 1))
	local pool=perf$n
	dmg pool create --size "$pool_size" "$pool" >/dev/null
	"$BIN"/daos_perf --pool "$pool" --class "$class" --size "$size" --count "$count" --concurrency "$conc" \
		--system-dir "$dir" --json "$@"
	dmg pool destroy "$pool" >/dev/null
}

: >"$out"
for run in $(seq 1 "$runs"); do
	for c in "${cases[@]}"; do
		read -r class size conc count <<<"$c"
		echo "== run $run: $class $size x$count, $conc in flight" >&2
		run_case "$class" "$size" "$conc" "$count" | tee -a "$out" | "$BIN"/daos_perf --summarize /dev/stdin | tail -n +2 >&2
	done
done
verified=
if [ -n "$verify" ]; then
	verified=$out.verified
	: >"$verified"
	for c in "${cases[@]}"; do
		read -r class size conc count <<<"$c"
		echo "== verified run: $class $size x$((count / 4)), $conc in flight" >&2
		run_case "$class" "$size" "$conc" "$((count / 4))" --verify --no-raw >>"$verified"
	done
fi

echo >&2
echo "== median [min-max] of $runs runs ($(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'), rows in $out)"
"$BIN"/daos_perf --summarize "$out"
if [ -n "$verified" ]; then
	echo
	echo "== verified runs: every fetched byte checked against what was written (rows in $verified)"
	"$BIN"/daos_perf --summarize "$verified"
fi
