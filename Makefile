# Relais — build, test and run everything from here. See README.md.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BUILD    := $(GO) build -trimpath -ldflags '$(LDFLAGS)'
CMDS     := ./agent/cmd/relais-agent ./agent/cmd/relais-sim ./central/cmd/relais-central
# Time given to each fuzz target in `make test` (CI) and in `make fuzz`.
FUZZTIME ?= 5s
LONGFUZZ ?= 5m

.PHONY: all build cross test fuzz-short fuzz demo bench lint clean

all: build

## build: the three binaries for this machine, in bin/
build:
	@mkdir -p bin
	$(BUILD) -o bin/ $(CMDS)

## cross: static binaries for the Raspberry Pi (arm64, and armv6 for the Pi Zero and 1)
cross:
	@mkdir -p bin/linux-arm64 bin/linux-armv6
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(BUILD) -o bin/linux-arm64/ $(CMDS)
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=6 $(BUILD) -o bin/linux-armv6/ $(CMDS)
	@for f in bin/linux-arm64/* bin/linux-armv6/*; do \
		$(GO) version -m $$f | grep -q 'CGO_ENABLED=0' || { echo "$$f is not static"; exit 1; }; \
		echo "$$f: static, $$($(GO) version -m $$f | awk '$$2 ~ /^GOARCH|^GOARM/ {printf "%s ", $$2}')"; \
	done

## test: format and vet checks, every test with the race detector, then each fuzz target briefly
test: lint
	$(GO) test -race -timeout 14m ./...
	@$(MAKE) --no-print-directory fuzz-short

# Every `func FuzzX` of every package, each for FUZZTIME.
fuzz-short:
	@set -e; n=0; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		pkg=$$(dirname $$f); \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg >/dev/null || \
				{ $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; echo "fuzz: $$n passed, 1 failed"; exit 1; }; \
			n=$$((n+1)); \
		done; \
	done; echo "fuzz: $$n passed, 0 failed"

## fuzz: each fuzz target for LONGFUZZ
fuzz:
	@$(MAKE) --no-print-directory fuzz-short FUZZTIME=$(LONGFUZZ)

## demo: the whole system on this machine with simulated sites
demo: build
	@echo "make demo: not yet. The simulated fleet and the dashboard are not built yet;"
	@echo "for now bin/ holds the three binaries: bin/relais-agent check --config configs/agent.example.toml"

## bench: every benchmark, with figures next to their peers measured in the same run
# Go benchmarks first (benchstat-friendly output), then the load scenarios
# (TestBench*), which start real peers (ippeveprinter, CUPS, ...) and print
# each figure with its ratio to the peer.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./...
	RELAIS_BENCH=1 RELAIS_REQUIRE_PEERS=1 $(GO) test -count=1 -timeout 14m -run '^TestBench' -v ./... | grep -v '^=== RUN\|^--- SKIP\|^    .*: a load scenario\|^?\|no tests to run'


## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
