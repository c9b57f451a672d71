# GoDAOS. `make` builds every binary into ./bin; `make demo` and `make test` are the
# two commands in the README.

GO      ?= go
BIN     := bin
CMDS    := $(notdir $(wildcard cmd/*))
PKGS    := ./...
# Fuzz targets run briefly in every test run, each for a number of executions
# (package:Func:count) sized to take a few seconds here. A count, not a duration:
# Go 1.26's fuzz coordinator can fail a duration-bounded run at its deadline with
# a spurious "context deadline exceeded" (go.dev/issue/75804, fixed in Go 1.27).
# `make fuzz FUZZTIME=10m` fuzzes each target longer.
FUZZTIME ?=
FUZZ_TARGETS := server/vos:FuzzDecodeOp:150000x server/vos:FuzzReadRecord:200000x server/vos:FuzzCheckpoint:50000x \
	server/vos:FuzzReplay:100x internal/rpc:FuzzDecodeFrame:300000x internal/rpc:FuzzServerConn:150000x \
	server/config:FuzzParse:70000x internal/security:FuzzParseACE:200000x \
	internal/security/auth:FuzzVerify:50000x internal/security/capability:FuzzVerify:20000x \
	server/swim:FuzzDecodeMeta:100000x internal/ec:FuzzSplit:50000x \
	daos/dfs:FuzzDecodeEntry:50000x daos/uns:FuzzParse:100000x server/engine:FuzzLockReq:30000x \
	daos/il:FuzzDecodeInfo:100000x daos/il:FuzzParseUUID:100000x daos/mover:FuzzParseEndpoint:50000x \
	internal/testsys/posixload:FuzzParseDirents:20000x internal/testsys/posixload:FuzzParseFio:20000x \
	internal/testsys/posixload:FuzzParseOutputs:20000x

.PHONY: all build il deps test unit race fuzz lint demo demo-failover perf daos-perf proto clean

all: build il

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

deps:
	scripts/deps.sh

# The interception library (docs/design/intercept.md): the LD_PRELOAD shim
# and the Go client it loads from its own directory, side by side in bin/.
#   LD_PRELOAD=bin/libpil4dfs.so dd if=/mnt/dfuse/f of=/dev/null bs=1M
il:
	@mkdir -p $(BIN)
	$(GO) build -buildmode=c-shared -o $(BIN)/libgodaos_il.so ./cmd/libgodaos_il
	@rm -f $(BIN)/libgodaos_il.h
	$(CC) -O2 -g -Wall -Wextra -fPIC -shared -fvisibility=hidden -o $(BIN)/libpil4dfs.so daos/il/csrc/pil4dfs.c -ldl -lpthread

# The test command of the README and of CI.
test: deps lint build unit race fuzz

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go') | grep -v '\.pb\.go$$' || true); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

unit:
	$(GO) test -count=1 $(PKGS)

# The race detector over everything but the 50-process crash test (-short).
race:
	$(GO) test -count=1 -race -short $(PKGS)

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; n=$${rest#*:}; \
		if [ -n "$(FUZZTIME)" ]; then n=$(FUZZTIME); fi; \
		echo "fuzz $$pkg $$fn ($$n)"; \
		$(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$$n ./$$pkg || exit 1; \
	done

# The README's demo: a local 3-server system (launcher local -n 3) with a pool,
# an agent, a container, daos_perf --verify, daos pool autotest and daos
# object; then a VOS target up close. It stops everything it started.
demo: deps build
	scripts/demo.sh

# The failover demo: kill -9 a server under an RP_3GX workload, watch the
# rebuild, restart and reintegrate it (scripts/demo-failover.sh).
demo-failover: deps build
	scripts/demo-failover.sh

# The benchmark table of docs/performance.md.
perf: build
	$(BIN)/vos_perf --preset issue

# The daos_perf matrix of docs/performance.md: a local 3-server system, S1 and
# SX, 1 MiB and 4 KiB updates and fetches beside their raw baselines, 3 runs
# (about 5 minutes; scripts/daos-perf.sh --help for options).
daos-perf: build
	scripts/daos-perf.sh

# Regenerate internal/proto's committed Go code after editing a .proto.
proto:
	scripts/proto.sh

clean:
	rm -rf $(BIN)
