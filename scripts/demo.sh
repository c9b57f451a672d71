#!/usr/bin/env bash
# The GoDAOS demo, for now one storage target: benchmark it with vos_perf (the
# table compares VOS with raw file I/O on the same disk), then look inside it
# with ddb the way an administrator would after a crash, and catch a corrupted
# byte with the checksums.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
work=$(mktemp -d "${TMPDIR:-/tmp}/godaos-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

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
