#!/usr/bin/env bash
# A throwaway Slurm cluster on this machine, for tests and demos: munged (its
# own key and socket), slurmctld and one slurmd per node, nodes n1..nN all on
# 127.0.0.1 (Debian's Slurm 22.05 runs several slurmd on one host with -N).
# Everything lives under DIR; nothing under /etc, /run or /var is touched.
#
#   scripts/slurm-test-cluster.sh start DIR [NODES]   # NODES 1 or more, default 2
#   export SLURM_CONF=DIR/slurm.conf                  # then srun, sinfo, ... use it
#   scripts/slurm-test-cluster.sh stop DIR            # cancel jobs, stop the daemons
#
# Ports: SLURMCTLD_PORT and SLURMD_PORT (the first of NODES consecutive ones)
# from the environment, else free ones found here. start prints SLURM_CONF=...
# and returns once sinfo shows every node idle (or fails, saying why, after
# stopping what it started).
set -euo pipefail

usage() {
	echo "usage: $0 start DIR [NODES] | stop DIR" >&2
	exit 2
}
log() { echo "slurm-test-cluster: $*" >&2; }
# started: the DIR whose daemons a failing start must stop again.
started=""
die() {
	log "$*"
	if [ -n "$started" ]; then
		log "start failed; logs in $started/log and $started/munge"
		stop "$started"
	fi
	exit 1
}

# in_use PORT: something listens on 127.0.0.1:PORT.
in_use() { (: >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_ports N: the first of N consecutive ports that nothing listens on.
free_ports() {
	local n=$1 base i ok
	for _ in $(seq 1 200); do
		base=$((20000 + RANDOM % 30000))
		ok=1
		for ((i = 0; i < n; i++)); do
			if in_use $((base + i)); then ok=0 && break; fi
		done
		if ((ok)); then
			echo "$base"
			return
		fi
	done
	die "no $n free consecutive ports"
}

# stop_pidfiles FILE...: SIGTERM the daemons (all at once: slurmctld alone
# takes seconds to save its state), SIGKILL what is left after 10 s.
stop_pidfiles() {
	local f pids=()
	for f in "$@"; do
		[ -s "$f" ] && pids+=("$(cat "$f")")
	done
	if ((${#pids[@]})); then
		kill -TERM "${pids[@]}" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "${pids[@]}" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "${pids[@]}" 2>/dev/null || true
	fi
	rm -f "$@"
}

stop() {
	local dir=$1
	[ -f "$dir/slurm.conf" ] || return 0
	export SLURM_CONF=$dir/slurm.conf
	# jobs first, so no slurmstepd outlives its slurmd
	if [ -s "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
		timeout 10 scancel --quiet --full $(timeout 10 squeue -h -o %i 2>/dev/null) 2>/dev/null || true
		for _ in $(seq 1 50); do
			[ -z "$(timeout 10 squeue -h -o %i 2>/dev/null)" ] && break
			sleep 0.2
		done
	fi
	stop_pidfiles "$dir"/slurmd.*.pid "$dir/slurmctld.pid" "$dir/munge/munged.pid"
}

need() {
	local b
	for b in "$@"; do
		command -v "$b" >/dev/null 2>&1 || die "$b not found: install the Debian packages slurm-wlm and munge (scripts/deps.sh does)"
	done
}

start() {
	local dir=$1 nodes=$2 user i ctld_port slurmd_port
	need munged munge slurmctld slurmd sinfo
	((nodes >= 1)) || usage
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	# munged wants its socket directory searchable by all and its key private
	mkdir -p -m 755 "$dir/munge"
	mkdir -p -m 700 "$dir/munge/key"
	mkdir -p "$dir/state" "$dir/log"
	for ((i = 1; i <= nodes; i++)); do mkdir -p "$dir/spool/n$i"; done
	if [ ! -s "$dir/munge/key/munge.key" ]; then
		dd if=/dev/urandom of="$dir/munge/key/munge.key" bs=1024 count=1 status=none
		chmod 400 "$dir/munge/key/munge.key"
	fi
	ctld_port=${SLURMCTLD_PORT:-$(free_ports 1)}
	slurmd_port=${SLURMD_PORT:-$(free_ports "$nodes")}
	user=$(id -un)
	cat >"$dir/slurm.conf" <<EOF
# written by scripts/slurm-test-cluster.sh
ClusterName=godaostest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=n[1-$nodes] NodeAddr=127.0.0.1 Port=$slurmd_port-$((slurmd_port + nodes - 1)) CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=n[1-$nodes] Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
	export SLURM_CONF=$dir/slurm.conf
	started=$dir

	# --force: munged refuses a socket below a directory that not everyone may
	# search (a test's temporary directory); only this user talks to it here.
	munged --force --socket="$dir/munge/munge.sock" --key-file="$dir/munge/key/munge.key" \
		--log-file="$dir/munge/munged.log" --pid-file="$dir/munge/munged.pid" \
		--seed-file="$dir/munge/key/munged.seed" ||
		die "munged did not start: $(tail -1 "$dir/munge/munged.log" 2>/dev/null)"
	munge --socket="$dir/munge/munge.sock" -n >/dev/null || die "munged does not answer on $dir/munge/munge.sock"
	slurmctld -f "$dir/slurm.conf" -i || die "slurmctld did not start: $(tail -1 "$dir/log/slurmctld.log" 2>/dev/null)"
	for ((i = 1; i <= nodes; i++)); do
		slurmd -f "$dir/slurm.conf" -N "n$i" || die "slurmd -N n$i did not start: $(tail -1 "$dir/log/slurmd.n$i.log" 2>/dev/null)"
	done

	local idle=""
	for _ in $(seq 1 300); do
		idle=$(timeout 10 sinfo -h -N -t idle -o %N 2>/dev/null | sort -u | wc -l) || idle=0
		if ((idle == nodes)); then
			log "$nodes nodes idle (slurmctld port $ctld_port, slurmd ports $slurmd_port..$((slurmd_port + nodes - 1)))"
			echo "SLURM_CONF=$dir/slurm.conf"
			return 0
		fi
		sleep 0.1
	done
	die "only $idle of $nodes nodes idle after 30 s: $(timeout 10 sinfo -h -N -o '%N %T %E' 2>&1 | tr '\n' ';')"
}

case "${1:-}" in
start)
	[ $# -ge 2 ] || usage
	start "$2" "${3:-2}"
	;;
stop)
	[ $# -eq 2 ] || usage
	stop "$2"
	;;
*) usage ;;
esac
