# edgenode: build, run and test. `make test` is what CI runs (.ci/run).

GO       ?= go
BIN      := bin/edgenode
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The version is stamped into internal/version, which the command and the
# mobile facade (Version) both read.
VERSION_X := -X github.com/edgenode/edgenode/internal/version.stamp=$(VERSION)
LDFLAGS  := -s -w $(VERSION_X)
BUILD    := $(GO) build -trimpath -ldflags="$(LDFLAGS)"

# `make run` settings: a data directory beside the checkout, loopback only.
DATA     ?= ./edgenode-data
LISTEN   ?= 127.0.0.1:8008
# mDNS finds peers on the LAN by multicast; `make run` leaves it off so
# nothing is announced on the network unless asked for (MDNS=true).
MDNS     ?= false

# staticcheck is pinned (v0.8.2 is release 2026.2.2; Go 1.26 needs 2026.1 or
# later) and installed into bin/tools, so every machine lints alike.
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := bin/tools/staticcheck-$(STATICCHECK_VERSION)/staticcheck

# gobind and gomobile are pinned (DEPENDENCIES.md) and installed into
# bin/tools like staticcheck; the module requires golang.org/x/mobile/bind
# at the same version (internal/tools/tools.go).
MOBILE_VERSION := v0.0.0-20261011034528-197770444867
MOBILE_TOOLS   := bin/tools/gobind-$(MOBILE_VERSION)
GOBIND         := $(MOBILE_TOOLS)/gobind
GOMOBILE       := $(MOBILE_TOOLS)/gomobile

# Go tests: the race detector on; a hung test fails instead of stalling CI.
GOTEST_FLAGS ?= -race -count=1 -timeout 15m

.PHONY: all build run test gotest gotest386 hostile e2e e2e-js e2e-arm lint staticcheck bindings mobile android mobilebuild pi cross footprint idle bench fuzz clean

all: build

build:
	$(BUILD) -o $(BIN) ./cmd/edgenode

# Open registration so the README's curl walkthrough can register; the
# listener is loopback only, so only this machine can reach it.
run: build
	./$(BIN) run --open-registration --data $(DATA) --client-listen $(LISTEN) --mdns=$(MDNS)

test: lint gotest gotest386 bindings mobilebuild e2e e2e-js fuzz

gotest:
	$(GO) test $(GOTEST_FLAGS) ./...

# The hostile-peer suite alone (gotest runs it too): every attack a stranger
# with a libp2p key of its own can make on a real node (app/hostile_*_test.go).
hostile:
	$(GO) test $(GOTEST_FLAGS) -run Hostile ./app

# The storage tests natively as a 32-bit build (GOARCH=386 runs on an amd64
# kernel; there is no race detector for 386, hence no -race): kv, and the
# bulk write of over 64 MiB through a real node, restarted after a clean stop
# and after SIGKILL, which a 64-bit run skips. Guards the 32-bit Badger
# options in kv/arch32.go. A few minutes. Every package and its tests must
# also build as 32-bit (vet), so none grows a constant an int32 cannot hold.
gotest386:
	CGO_ENABLED=0 GOARCH=386 $(GO) vet ./...
	CGO_ENABLED=0 GOARCH=386 $(GO) test -count=1 -timeout 15m ./kv
	CGO_ENABLED=0 GOARCH=386 $(GO) test -count=1 -timeout 15m -run '^Test32Bit' ./internal/crashtest

# The README walkthrough against the built binary, including a restart, and
# two nodes chatting over libp2p on loopback.
e2e: build
	EDGENODE_BIN=$(BIN) bash scripts/quickstart.sh
	EDGENODE_BIN=$(BIN) bash scripts/twonodes.sh

# A real client against the built binary: matrix-js-sdk (pinned in
# e2e/js/package-lock.json, installed by npm ci) with two live-syncing users,
# run by node --test. Needs node and npm.
e2e-js: build
	EDGENODE_BIN=$(BIN) bash e2e/js/run.sh

# Runs every check before failing, so one run shows all the problems.
lint: $(STATICCHECK)
	@status=0; \
	unformatted=$$(gofmt -l .); \
	if [ -n "$$unformatted" ]; then echo "gofmt -l: these files need gofmt:"; echo "$$unformatted"; status=1; fi; \
	echo "$(GO) vet ./..."; $(GO) vet ./... || status=1; \
	echo "staticcheck ./..."; $(STATICCHECK) ./... || status=1; \
	exit $$status

$(STATICCHECK):
	GOBIN=$(CURDIR)/$(dir $(STATICCHECK)) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

staticcheck: $(STATICCHECK)

$(GOBIND):
	GOBIN=$(CURDIR)/$(MOBILE_TOOLS) $(GO) install golang.org/x/mobile/cmd/gobind@$(MOBILE_VERSION)

$(GOMOBILE): $(GOBIND)
	GOBIN=$(CURDIR)/$(MOBILE_TOOLS) $(GO) install golang.org/x/mobile/cmd/gomobile@$(MOBILE_VERSION)

# The binding check: gobind generates the Java and Objective-C bindings of
# ./mobile (no SDK needed) and fails if it skipped any member; javac
# compiles the Java output when a JDK is present.
bindings: $(GOBIND)
	GOBIND=$(GOBIND) bash scripts/bindings.sh

# Libraries for apps: bin/edgenode.aar (Android) and bin/Edgenode.xcframework
# (iOS), each built only where its SDK is installed; otherwise says what is
# missing and succeeds.
# No extra link flags are needed: the libp2p host no longer links pion's
# wlynxg/anet, which needed -ldflags=-checklinkname=0 (mobilebuild guards it).
mobile: $(GOMOBILE)
	@set -e; built=0; export PATH="$(CURDIR)/$(MOBILE_TOOLS):$$PATH"; \
	if [ -n "$${ANDROID_HOME:-$${ANDROID_SDK_ROOT:-}}" ] && [ -n "$${ANDROID_NDK_HOME:-}" ]; then \
		echo "gomobile bind -target=android"; \
		$(GOMOBILE) bind -target=android -androidapi 21 -trimpath -ldflags="-s -w $(VERSION_X)" -o bin/edgenode.aar ./mobile; built=1; \
	else echo "mobile: Android SDK/NDK not found (set ANDROID_HOME and ANDROID_NDK_HOME): no .aar"; fi; \
	if [ "$$(uname)" = Darwin ] && xcrun --sdk iphoneos --show-sdk-path >/dev/null 2>&1; then \
		echo "gomobile bind -target=ios"; \
		$(GOMOBILE) bind -target=ios,iossimulator -trimpath -ldflags="-s -w $(VERSION_X)" -o bin/Edgenode.xcframework ./mobile; built=1; \
	else echo "mobile: Xcode iOS SDK not found (macOS with Xcode needed): no .xcframework"; fi; \
	if [ $$built = 0 ]; then echo "mobile: nothing built; make bindings checks the bindings without SDKs"; fi

# Android executables (Termux, adb shell): arm64 is static and needs no
# NDK. Go links android/arm (ARMv7) only externally, with cgo (for any
# program, not only this one), so the ARMv7 build needs the NDK's clang:
# it is built when ANDROID_NDK_HOME is set and skipped otherwise.
ANDROID_API ?= 21
NDK_CC_ARMV7 = $(ANDROID_NDK_HOME)/toolchains/llvm/prebuilt/$(shell uname -s | tr A-Z a-z)-x86_64/bin/armv7a-linux-androideabi$(ANDROID_API)-clang
android:
	CGO_ENABLED=0 GOOS=android GOARCH=arm64 $(BUILD) -o $(BIN)-android-arm64 ./cmd/edgenode
	@if [ -n "$${ANDROID_NDK_HOME:-}" ]; then \
		echo "CGO_ENABLED=1 CC=$(NDK_CC_ARMV7) GOOS=android GOARCH=arm GOARM=7 $(BUILD) -o $(BIN)-android-armv7 ./cmd/edgenode"; \
		CGO_ENABLED=1 CC=$(NDK_CC_ARMV7) GOOS=android GOARCH=arm GOARM=7 $(BUILD) -o $(BIN)-android-armv7 ./cmd/edgenode; \
	else echo "android: ANDROID_NDK_HOME not set: no android/arm (ARMv7) executable (Go links it only with the NDK)"; fi
	@ls -l $(BIN)-android-*

# The mobile build check (part of `make test`, under a minute with a warm
# build cache): the android/arm64 executable links, and ./mobile (all an
# app library links but gobind's generated glue) compiles for android/arm
# and ios/arm64, whose links need the NDK or Xcode. The android binary must
# not contain the browser transports go-libp2p's root package would link
# (WebRTC via pion, whose wlynxg/anet broke the Android link; WebTransport;
# WebSocket). Prometheus and OpenTelemetry stay: libp2p's event bus, swarm
# and resource manager import Prometheus, the Kademlia DHT OpenTelemetry.
MOBILE_BANNED_MODULES := github.com/pion/|github.com/wlynxg/anet|github.com/quic-go/webtransport-go|github.com/gorilla/websocket|github.com/coder/websocket
mobilebuild:
	CGO_ENABLED=0 GOOS=android GOARCH=arm64 $(BUILD) -o $(BIN)-android-arm64 ./cmd/edgenode
	CGO_ENABLED=0 GOOS=android GOARCH=arm GOARM=7 $(GO) build ./mobile
	CGO_ENABLED=0 GOOS=ios GOARCH=arm64 $(GO) build ./mobile
	@banned=$$($(GO) version -m $(BIN)-android-arm64 | grep -E '$(MOBILE_BANNED_MODULES)' || true); \
	if [ -n "$$banned" ]; then echo "mobilebuild: $(BIN)-android-arm64 links modules it must not:"; echo "$$banned"; exit 1; fi; \
	echo "mobilebuild: android/arm64 links without pion, anet, webtransport or websocket; ./mobile compiles for android/arm and ios/arm64"

# Raspberry Pi builds: 64-bit (Pi 3/4/5 on a 64-bit OS) and 32-bit ARMv7
# (Pi 2/3 on a 32-bit OS), static (no cgo), stripped and trimmed. Install
# with contrib/edgenode.service and contrib/edgenode.yaml. `cross` is the
# old name.
pi:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(BUILD) -o $(BIN)-linux-arm64 ./cmd/edgenode
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(BUILD) -o $(BIN)-linux-armv7 ./cmd/edgenode
	@ls -l $(BIN)-linux-arm64 $(BIN)-linux-armv7

cross: pi

# Measures binary sizes, idle and loaded RSS, start-up time and disk use
# (BENCHMARKS.md, "Footprint"). Takes a few minutes; not part of `make test`.
footprint: build pi
	EDGENODE_BIN=$(BIN) bash scripts/footprint.sh

# Idle after a large load: 1,000 rooms x 20 events and three initial syncs
# on a pi-profile node, then 60 s idle must cost < 0.6 CPU-seconds and < 20
# garbage collections, with RSS after the load < 100 MB (issue 14). A few
# minutes; not part of `make test`.
idle: build
	EDGENODE_BIN=$(BIN) bash scripts/idle.sh

# The walkthrough against the Pi builds under qemu user-mode emulation
# (apt-get install qemu-user): proves they start, store and restart. Not part
# of `make test`.
e2e-arm: pi
	EDGENODE_BIN=$(BIN)-linux-armv7 EDGENODE_WRAPPER=qemu-arm bash scripts/quickstart.sh
	EDGENODE_BIN=$(BIN)-linux-arm64 EDGENODE_WRAPPER=qemu-aarch64 bash scripts/quickstart.sh

# The fuzz targets (hostile federation input, and the decoders of what is
# stored or handed to clients), each fuzzed for FUZZTIME (Go fuzzes one
# target per invocation) on two workers; the last step of `make test`. The
# growing corpus stays in Go's cache; only a failure writes
# testdata/fuzz/<target>/, which is worth committing as a regression seed.
# FUZZTIME is a count of executions, not a duration: with a duration, Go
# 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" when the deadline meets a busy worker (go.dev/issue/75804, fixed
# in Go 1.27); a count has no deadline. 20000 is a few seconds a target here.
FUZZTIME ?= 20000x
FUZZ_TARGETS := ./federation:FuzzSendTransaction ./federation:FuzzXMatrixAuthorization ./federation:FuzzApplyEDUs \
	./node:FuzzInputFederatedPDU ./node:FuzzFederatedTxnDAG ./node:FuzzEventRecordCodec ./syncapi:FuzzParseStreamToken ./kv:FuzzDecodeKey
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "$(GO) test -run '^$$' -fuzz '^$$name\$$' -fuzztime $(FUZZTIME) -parallel 2 $$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -parallel 2 $$pkg; \
	done

BENCHTIME ?= 200ms
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# Removes build outputs and bin/tools; the data directory ($(DATA)) is left alone.
clean:
	rm -rf bin
