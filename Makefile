# GoDAOS. `make` builds every binary into ./bin; `make demo` and `make test` are the
# two commands in the README.

GO      ?= go
BIN     := bin
CMDS    := $(notdir $(wildcard cmd/*))
PKGS    := ./...
# Fuzz targets run briefly in every test run; `make fuzz FUZZTIME=10m` for longer.
FUZZTIME ?= 10s
FUZZ_TARGETS := server/vos:FuzzDecodeOp server/vos:FuzzReadRecord server/vos:FuzzCheckpoint server/vos:FuzzReplay internal/rpc:FuzzDecodeFrame internal/rpc:FuzzServerConn server/config:FuzzParse

.PHONY: all build deps test unit race fuzz lint demo perf proto clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

deps:
	scripts/deps.sh

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
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) ./$$pkg || exit 1; \
	done

demo: deps build
	scripts/demo.sh

# The benchmark table of docs/performance.md.
perf: build
	$(BIN)/vos_perf --preset issue

# Regenerate internal/proto's committed Go code after editing a .proto.
proto:
	scripts/proto.sh

clean:
	rm -rf $(BIN)
