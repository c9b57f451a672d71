#!/usr/bin/env bash
# Installs what GoDAOS needs to build and test on Debian 12, skipping what is there.
# Safe to run again. Used by `make demo`, `make test` and CI.
set -euo pipefail

# Debian packages the current code and tests need. (Later parts of the project
# add fuse3, mpich, hdf5, ... here as they start using them.)
# slurm-wlm, munge, pdsh: launcher's srun and pdsh launches and their tests
# (scripts/slurm-test-cluster.sh runs its own munged, slurmctld and slurmd).
# fuse3 libfuse3-dev: dfuse mounts (fusermount3) in the POSIX tests (issue 6);
# fio mpich libmpich-dev libhdf5-mpich-dev hdf5-tools: the workloads of
# internal/testsys/posixload run against those mounts (fio --verify, mpicc and
# mpirun for MPI-IO, h5pcc/HDF5 with h5ls, h5dump and h5diff).
DEB_PACKAGES=(ca-certificates git make gcc slurm-wlm munge pdsh
	fuse3 libfuse3-dev fio mpich libmpich-dev libhdf5-mpich-dev hdf5-tools)

GO_MIN=1.26

log() { echo "deps: $*"; }

missing=()
for p in "${DEB_PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if ((${#missing[@]})); then
	log "installing ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
	log "Debian packages present"
fi

# Go: the toolchain comes with the machine (/usr/local/go); Debian's is too old.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH=/usr/local/go/bin:$PATH
fi
if ! command -v go >/dev/null 2>&1; then
	echo "deps: Go $GO_MIN or newer is required and was not found (looked in PATH and /usr/local/go/bin)." >&2
	echo "deps: install it from https://go.dev/dl and put its bin directory in PATH." >&2
	exit 1
fi
have=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$GO_MIN" "$have" | sort -V | head -1)" != "$GO_MIN" ]; then
	echo "deps: Go $have is too old; GoDAOS needs $GO_MIN or newer." >&2
	exit 1
fi
log "go $have"

# Go modules, at the versions go.sum pins, through the module proxy.
cd "$(dirname "$0")/.."
go mod download
log "Go modules present"
