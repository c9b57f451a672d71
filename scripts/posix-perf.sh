#!/usr/bin/env bash
# The POSIX figures of docs/performance.md ("POSIX: DFS, dfuse"), in one
# command: start a local 3-server system (launcher local -n 3 --targets 4), an
# insecure daos_agent, a pool and a POSIX container mounted with dfuse; then,
# in the same run:
#   - daos_perf SX, 1 MiB values, 2 and 8 in flight: the native object figure
#     (files are SX, the default class of a container with rd_fac 0);
#   - dfs_perf --mode io (2 ranks, 1 MiB transfers, a file each, IOR-like)
#     through DFS in the process, through the dfuse mount, through the mount
#     with the interception library (if bin/libpil4dfs.so is built), and on
#     the local file system under $TMPDIR (the baseline);
#   - dfs_perf --mode md (2 ranks, a directory each, mdtest-like: create,
#     stat, remove) through DFS, through dfuse, and on the local file system.
#
#   scripts/posix-perf.sh [--size-per-rank 512M] [--files 5000] [--dir DIR] [--pool-size 24G]
#   scripts/posix-perf.sh --dir /dev/shm/godaos-posix-perf --pool-size 6G   # storage on tmpfs (DAOS's ram class)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin}
dir=${TMPDIR:-/tmp}/godaos-posix-perf
port=15001
size=512M
files=5000
count_1m=1000
pool_size=24G
while [ $# -gt 0 ]; do
	case "$1" in
	--dir) dir=$2; shift 2 ;;
	--port) port=$2; shift 2 ;;
	--size-per-rank) size=$2; shift 2 ;;
	--files) files=$2; shift 2 ;;
	--count-1m) count_1m=$2; shift 2 ;;
	--pool-size) pool_size=$2; shift 2 ;;
	-h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "posix-perf.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
hosts="127.0.0.1:$port,127.0.0.1:$((port + 10)),127.0.0.1:$((port + 20))"
dmg() { "$BIN"/dmg -l "$hosts" "$@"; }
mnt=$dir.mnt
local_dir=$dir.local

agent_pid=
started=
cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then fusermount3 -u "$mnt" || fusermount3 -u -z "$mnt"; fi
	if [ -n "$agent_pid" ]; then kill -TERM "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null || true; fi
	if [ -n "$started" ]; then
		"$BIN"/launcher stop --dir "$dir" >/dev/null 2>&1 || true
		rm -rf "$dir" "$local_dir"
		rmdir "$mnt" 2>/dev/null || true
	fi
}
trap cleanup EXIT

if [ -e "$dir" ]; then
	echo "posix-perf.sh: $dir exists; remove it or give another --dir" >&2
	exit 1
fi
echo "== starting 3 servers in $dir" >&2
started=1
"$BIN"/launcher local -n 3 --targets 4 --dir "$dir" --port "$port" >&2
export DAOS_AGENT_DRPC_DIR=$dir/agent
"$BIN"/daos_agent start --insecure -l "127.0.0.1:$port" >"$dir/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 1 50); do [ -S "$DAOS_AGENT_DRPC_DIR/daos_agent.sock" ] && break; sleep 0.1; done
dmg pool create --size "$pool_size" perf >/dev/null
"$BIN"/daos cont create perf fs --type POSIX >/dev/null
mkdir -p "$mnt" "$local_dir"
"$BIN"/dfuse -m "$mnt" --pool perf --cont fs

echo "== native: daos_perf SX 1 MiB x$count_1m (update = write, fetch = read), 2 in flight (as the 2 ranks below, one transfer each) and 8"
for conc in 2 8; do
	"$BIN"/daos_perf --pool perf --class SX --size 1M --count "$count_1m" --concurrency "$conc" --system-dir "$dir" | tail -n +1
done

io() { "$BIN"/dfs_perf --mode io --ranks 2 --size "$size" --xfer 1M --verify "$@" | tail -n +2; }
echo
echo "== sequential 1 MiB transfers, 2 ranks, $size each (dfs_perf --mode io --verify)"
echo "   phase    api  ranks  ops  ops/s  MiB/s  seconds   path"
io --api dfs --pool perf --cont fs | sed 's/$/   DFS in the process/'
io --api posix --dir "$mnt" | sed 's/$/   dfuse/'
io --api posix --dir "$local_dir" | sed 's/$/   local file system/'

# The interception library wraps libc, which Go programs do not call for
# I/O: these rows are fio's (psync, 2 jobs, a file each, 1 MiB blocks).
fio_bw() { # DIR RW [env...]: the group's bandwidth in MiB/s
	local d=$1 rw=$2
	shift 2
	env "$@" fio --name=seq --directory="$d" --rw="$rw" --bs=1M --size="$size" --numjobs=2 \
		--ioengine=psync --end_fsync=1 --group_reporting --filename_format='fio.$jobnum' 2>&1 |
		sed -n 's/^ *\(WRITE\|READ\): bw=\([0-9.]*\)\([KMG]\)i*B\/s.*/\2 \3/p' |
		awk '{v=$1; if ($2=="K") v/=1024; if ($2=="G") v*=1024; printf "%.0f", v}'
}
echo
echo "== fio, 2 jobs, 1 MiB blocks, $size each (write with a final fsync, then read)"
echo "   write MiB/s  read MiB/s   path"
for case in dfuse il local; do
	d=$mnt
	envs=()
	label="dfuse"
	case $case in
	il)
		[ -e "$BIN/libpil4dfs.so" ] || continue
		envs=(LD_PRELOAD="$PWD/$BIN/libpil4dfs.so")
		label="dfuse + libpil4dfs (LD_PRELOAD)"
		;;
	local) d=$local_dir label="local file system" ;;
	esac
	w=$(fio_bw "$d" write "${envs[@]}")
	sync
	[ "$case" = local ] && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	r=$(fio_bw "$d" read "${envs[@]}")
	printf "   %11s  %10s   %s\n" "$w" "$r" "$label"
	rm -f "$d"/fio.*
done

md() { "$BIN"/dfs_perf --mode md --ranks 2 --files "$files" "$@" | tail -n +2; }
echo
echo "== metadata, 2 ranks, $files files each in a directory of their own (dfs_perf --mode md)"
echo "   phase    api  ranks    ops   ops/s  MiB/s  seconds   path"
md --api dfs --pool perf --cont fs | sed 's/$/   DFS in the process/'
md --api posix --dir "$mnt" | sed 's/$/   dfuse/'
md --api posix --dir "$local_dir" | sed 's/$/   local file system/'
echo
echo "($(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'), storage and local file system: $(df -T "$(dirname "$dir")" | awk 'NR==2 {print $2}'))"
