# husk: build, demo, test, bench, install, lint.
#
#   make demo    build husk and run a busybox container that shows its isolated view
#   make test    install what the tests need, build, run unit and integration tests (root)
#   make bench   husk vs runc vs crun (integration/bench/bench.sh), writes docs/benchmarks.md
#   make fuzz    each fuzz target for FUZZ_SECS seconds (nightly + cargo-fuzz; docs/reliability.md)

SHELL := /bin/bash
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
# husk is linked statically with glibc as a static PIE (ASLR kept) and packed relative
# relocations: no dynamic loader, no libc.so pages, a small relocation table. That is 1.3 MB
# less peak RSS and a faster start than a dynamic build (docs/benchmarks.md). crt-static can
# only apply to the target's artifacts (proc macros cannot be static), so the host triple is
# named explicitly and the binary lands in target/<triple>/release.
HOST_TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
RELEASE := --release --target $(HOST_TRIPLE) --config 'target.$(HOST_TRIPLE).rustflags = ["-C", "target-feature=+crt-static", "-C", "link-arg=-Wl,-z,pack-relative-relocs"]'
HUSK := $(TARGET_DIR)/$(HOST_TRIPLE)/release/husk
PREFIX ?= /usr/local
# Debian packages the tests, the demo and the benchmark use.
DEB_PACKAGES := busybox-static runc crun hyperfine time jq iproute2 golang-github-containers-common qemu-system-x86 cpio podman netavark containerd docker.io tini mmdebstrap e2fsprogs uidmap

# The integration tests run this binary (set HUSK_BIN=runc to run them against runc).
export HUSK_BIN ?= $(HUSK)

.PHONY: all build deps test unit-test integration-test demo bench fuzz install lint clean

all: build

# The root package (husk-tests) is the workspace's default member, so name the binary's.
build:
	$(CARGO) build $(RELEASE) -p husk

# Installs the missing packages only; apt-get update only when an install needs it.
deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  [ "$$(id -u)" = 0 ] || { echo "deps: need root to install:$$missing" >&2; exit 1; }; \
	  echo "deps: installing$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq --no-install-recommends $$missing >/dev/null 2>&1 \
	    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; }; \
	fi

test: deps build unit-test integration-test

# Unit tests of the crates (pure logic, no root needed).
unit-test:
	$(CARGO) test --release --workspace --exclude husk-tests

# Integration tests: real containers, as root, in parallel. --no-fail-fast so that every
# test file runs and reports.
integration-test:
	@[ "$$(id -u)" = 0 ] || { echo "integration tests run containers: run as root" >&2; exit 1; }
	$(CARGO) test --release --no-fail-fast -p husk-tests

# Builds husk, makes a busybox bundle with `husk spec`, runs a container that prints its
# isolated view, cleans up.
demo: deps build
	@set -e; \
	work=$$(mktemp -d /tmp/husk-demo.XXXXXX); \
	trap '$(HUSK) --root "'"$$work"'/state" delete --force husk-demo >/dev/null 2>&1 || true; rm -rf "'"$$work"'"' EXIT; \
	bundle=$$work/bundle; \
	mkdir -p $$bundle/rootfs/bin $$bundle/rootfs/proc $$bundle/rootfs/sys $$bundle/rootfs/dev \
	  $$bundle/rootfs/tmp $$bundle/rootfs/etc; \
	cp /bin/busybox $$bundle/rootfs/bin/busybox; \
	for a in $$(/bin/busybox --list); do [ "$$a" = busybox ] || ln -s busybox $$bundle/rootfs/bin/$$a; done; \
	echo 'root:x:0:0:root:/root:/bin/sh' > $$bundle/rootfs/etc/passwd; \
	echo 'root:x:0:' > $$bundle/rootfs/etc/group; \
	$(HUSK) spec --bundle $$bundle; \
	printf '%s\n' \
	  'echo "== hostname: $$(hostname)"' \
	  'echo "== processes (this shell is pid 1):"; ps -o pid,user,args' \
	  'echo "== mounts:"; cat /proc/self/mounts' \
	  'echo "== capabilities:"; grep -E "^Cap(Eff|Prm|Bnd)" /proc/self/status' \
	  'echo "== user: $$(id)"' > $$bundle/rootfs/demo.sh; \
	jq '.process.terminal = false | .process.args = ["sh", "/demo.sh"] | .hostname = "husk-demo"' \
	  $$bundle/config.json > $$bundle/config.json.new && mv $$bundle/config.json.new $$bundle/config.json; \
	echo "\$$ husk run --bundle $$bundle husk-demo"; \
	$(HUSK) --root $$work/state run --bundle $$bundle husk-demo

# Each fuzz target for FUZZ_SECS seconds, its corpus in fuzz/corpus (not committed), seeded
# from fuzz/seeds. Needs the nightly toolchain and cargo-fuzz (docs/reliability.md); make test
# runs the seeds and regressions on stable instead.
FUZZ_SECS ?= 60
FUZZ_TARGETS := config state mount_options seccomp cli
fuzz:
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$t && \
	  $(CARGO) +nightly fuzz run -O $$t corpus/$$t seeds/$$t -- -max_total_time=$(FUZZ_SECS) -rss_limit_mb=2048 -timeout=10 || exit 1; \
	done

bench: deps build
	integration/bench/bench.sh

install: build
	install -D -m 0755 $(HUSK) $(DESTDIR)$(PREFIX)/bin/husk

lint:
	$(CARGO) clippy --workspace --all-targets --release -- -D warnings

clean:
	$(CARGO) clean
