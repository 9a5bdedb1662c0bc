# Relais — build, test and run everything from here. See README.md.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BUILD    := $(GO) build -trimpath -ldflags '$(LDFLAGS)'
CMDS     := ./agent/cmd/relais-agent ./agent/cmd/relais-sim ./central/cmd/relais-central
# Time given to each fuzz target in `make test` (CI) and in `make fuzz`.
FUZZTIME ?= 5s
LONGFUZZ ?= 5m
# Debian packages: maintainer field, and the date of every file (the commit time of HEAD).
DEB_MAINTAINER ?= $(shell git log -1 --format='%an <%ae>' 2>/dev/null)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
DEB_TARGETS ?= relais-agent:arm64 relais-agent:armhf relais-central:amd64 relais-central:arm64
# The SD image: where it goes and the relais-agent package it holds.
IMAGE    ?= dist/relais-rpi-arm64.img

.PHONY: all build cross test fuzz-short fuzz chaos demo bench lint clean deb image image-test

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

## chaos: the long chaos scenario (about 7 minutes): faults injected during traffic, nothing lost or doubled
# (`make test` runs its short form.) The table of faults and counts is printed at the end.
chaos:
	RELAIS_CHAOS=long RELAIS_REQUIRE_PEERS=1 $(GO) test -count=1 -v -timeout 20m -run '^TestChaos$$' ./central/chaos/

## demo: the whole system on this machine with simulated sites (Ctrl-C stops it)
demo: build
	bin/relais-central demo

## bench: every benchmark, with figures next to their peers measured in the same run
# Go benchmarks first (benchstat-friendly output), then the load scenarios
# (TestBench*), which start real peers (ippeveprinter, CUPS, ...) and print
# each figure with its ratio to the peer.
bench:
	@out=$$(mktemp); trap 'rm -f $$out' EXIT; set -e; \
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s ./...; \
	RELAIS_BENCH=1 RELAIS_REQUIRE_PEERS=1 RELAIS_BENCH_OUT=$$out $(GO) test -p 1 -count=1 -timeout 14m -run '^TestBench' -v ./... | \
		grep -v '^=== RUN\|^--- SKIP\|^    .*: a load scenario\|^?\|no tests to run\|^    .*bench: '; \
	echo; echo "Summary: each figure beside its peer or limit, measured in the same run"; \
	awk -F '\t' 'BEGIN { printf "%-52s %12s   %-36s %12s   %s\n", "figure", "Relais", "peer / limit", "peer", "ratio" } \
		{ printf "%-52s %12s   %-36s %12s   %s\n", $$1, $$2, $$3, $$4, $$5 }' $$out

## deb: Debian packages in dist/: relais-agent (arm64, armhf) and relais-central (amd64, arm64)
# DEB_TARGETS=relais-central:amd64 builds only that one.
# armhf is built with GOARM=6, so that one package runs on Debian's armhf (ARMv7) and on
# Raspberry Pi OS's (ARMv6: Pi Zero, Pi 1). The version comes from git describe (firmware/deb).
deb:
	@mkdir -p bin/deb dist
	$(GO) build -o bin/deb/mkdeb ./firmware/cmd/mkdeb
	@set -e; for pa in $(DEB_TARGETS); do \
		pkg=$${pa%:*} arch=$${pa#*:}; \
		case $$arch in armhf) goarch=arm goarm=6;; *) goarch=$$arch goarm=;; esac; \
		case $$pkg in relais-agent) cmds="./agent/cmd/relais-agent ./firmware/cmd/relais-firstboot";; \
			*) cmds=./central/cmd/relais-central;; esac; \
		mkdir -p bin/deb/$$arch; \
		echo "$$pkg $$arch: GOARCH=$$goarch GOARM=$$goarm"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$goarch GOARM=$$goarm $(BUILD) -o bin/deb/$$arch/ $$cmds; \
		bin/deb/mkdeb --package $$pkg --arch $$arch --bin bin/deb/$$arch --out dist \
			--describe "$(VERSION)" --commits "$$(git rev-list --count HEAD)" \
			--date "$(SOURCE_DATE_EPOCH)" --maintainer "$(DEB_MAINTAINER)"; \
	done

## image: the Raspberry Pi SD image (arm64) in IMAGE, built as root with mmdebstrap, then checked
# without booting (partition table, boot files, root file system). See firmware/README.md.
image:
	@$(MAKE) --no-print-directory deb DEB_TARGETS=relais-agent:arm64
	nice -n 19 firmware/image/build.sh $(IMAGE) "$$(ls -t dist/relais-agent_*_arm64.deb | head -n 1)"
	RELAIS_IMAGE=$(abspath $(IMAGE)) RELAIS_REQUIRE_PEERS=1 $(GO) test -count=1 -v -run '^TestImage' ./firmware/imagetest/

## image-test: boot IMAGE's root file system in QEMU (its own kernel) until relais-agent starts
image-test:
	RELAIS_IMAGE=$(abspath $(IMAGE)) RELAIS_IMAGE_BOOT=1 RELAIS_REQUIRE_PEERS=1 nice -n 19 $(GO) test -count=1 -v -timeout 20m -run '^TestBoot' ./firmware/imagetest/

## lint: gofmt and go vet, also for the Pi Zero's 32-bit ARM (where int is 32 bits)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=6 $(GO) vet ./...

clean:
	rm -rf bin
