#!/usr/bin/env bash
# Regenerates the committed Go code of internal/proto/*.proto (builds never need
# protoc; run this after editing a .proto). Installs protoc (Debian's
# protobuf-compiler) and the pinned Go plugins if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v protoc >/dev/null; then
	if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends protobuf-compiler
fi
export PATH="$PATH:$(go env GOPATH)/bin"
command -v protoc-gen-go >/dev/null || GOFLAGS= go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
command -v protoc-gen-go-grpc >/dev/null || GOFLAGS= go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
protoc -I internal/proto --go_out=. --go_opt=module=github.com/godaos/godaos \
	--go-grpc_out=. --go-grpc_opt=module=github.com/godaos/godaos internal/proto/*.proto
echo "proto: regenerated internal/proto"
