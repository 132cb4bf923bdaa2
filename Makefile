# metalboot — the doors. `make test` and `make demo` install what they need.

SHELL := /bin/bash
CARGO ?= cargo

# Debian packages the build and the test tiers use.
APT_PACKAGES := build-essential pkg-config ca-certificates git curl cpio zstd tar kmod busybox-static \
	btrfs-progs dosfstools mtools util-linux fdisk openssh-client libbtrfsutil-dev libclang-dev clang \
	qemu-system-x86 qemu-utils ovmf ipxe mmdebstrap iproute2 dnsmasq-base atftp isc-dhcp-client ansible-core chromium \
	debian-installer-12-netboot-amd64 nftables grub2-common ndisc6 kea-admin openssl prometheus lintian dpkg-dev \
	openssh-server btrbk isc-dhcp-relay postgresql

.PHONY: all build deps test unit lint golden demo help initramfs rootfs di-assets assets release e2e e2e-built netns bench fuzz deb

all: build

help:
	@echo "make test    install dependencies, lint, run every test tier"
	@echo "make demo    PXE-install a QEMU VM with the embedded default config"
	@echo "make golden  regenerate golden files after an intended template change"
	@echo "make lint    cargo fmt --check and clippy -D warnings"
	@echo "make netns   DHCP/TFTP with real clients in network namespaces (root)"
	@echo "make e2e     QEMU end-to-end scenarios (root)"
	@echo "make bench   TFTP and DHCP side by side with dnsmasq (root)"
	@echo "make fuzz    the DHCP and TFTP fuzz targets, FUZZ_SECS each (nightly, cargo-fuzz)"
	@echo "make assets  kernel, installer initramfs and root filesystem image into target/assets"
	@echo "make deb     the Debian package in target/deb, checked by lintian"

# a policy-rc.d for the install keeps packages from starting their daemons
# (openssh-server's sshd) on this machine: the tests start their own
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		export DEBIAN_FRONTEND=noninteractive; \
		guard=; if [ ! -e /usr/sbin/policy-rc.d ]; then guard=1; printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; fi; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; rc=$$?; \
		[ -z "$$guard" ] || rm -f /usr/sbin/policy-rc.d; [ $$rc -eq 0 ] || exit $$rc; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install the Rust stable toolchain"; exit 1; }

build: deps
	$(CARGO) build --workspace --locked

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	python3 tools/import-cycles

# every tier that runs on the build machine; root-only tests are marked
# #[ignore] so a plain `cargo test` as a normal user still passes
# (the QEMU and netns tiers are test targets with `test = false`: run by name
# below; every tier selects the whole workspace, so they all share one
# build of each crate)
unit: deps
	$(CARGO) test --workspace --locked -- --include-ignored

ASSETS ?= target/assets
CACHE ?= $(HOME)/.cache/metalboot

# every release build names the same packages, so features unify the same
# way and nothing is built twice (tools/make-deb names them too)
RELEASE_PACKAGES := -p metalboot -p metalboot-installer -p metalboot-initramfs

initramfs: deps
	$(CARGO) build --release --locked $(RELEASE_PACKAGES)
	target/release/metalboot-initramfs initramfs --installer target/release/metalboot-installer --out $(ASSETS) --cache $(CACHE)

# generic (bare metal; the BIOS scenario and the demo) and cloud (VMs; the other QEMU scenarios)
rootfs: deps
	$(CARGO) build --release --locked $(RELEASE_PACKAGES)
	target/release/metalboot-initramfs rootfs --flavour generic --out $(ASSETS) --cache $(CACHE)
	target/release/metalboot-initramfs rootfs --flavour cloud --out $(ASSETS) --cache $(CACHE)

# the Debian netboot installer's kernel and initrd, for method = "debian-installer"
DI_IMAGES := /usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64
di-assets: deps
	mkdir -p $(ASSETS)
	install -m 644 $(DI_IMAGES)/linux $(ASSETS)/di-linux
	install -m 644 $(DI_IMAGES)/initrd.gz $(ASSETS)/di-initrd.gz

assets: initramfs rootfs di-assets

# lint and the unit tests, then netns, leave a core idle much of the time
# (the compiler's serial stretches, tests waiting on timeouts and loop
# devices): what the next tier needs is built beside them at the lowest
# priority (tools/beside): the release build beside lint and unit, the
# assets and the package beside netns
test: deps
	@tools/beside release-build '$(CARGO) build --release --locked $(RELEASE_PACKAGES)' \
		$(MAKE) --no-print-directory lint unit
	@tools/beside assets-and-deb '$(MAKE) --no-print-directory assets deb' $(MAKE) --no-print-directory netns
	@$(MAKE) --no-print-directory e2e-built

release: deps
	$(CARGO) build --release --locked $(RELEASE_PACKAGES)

# DHCP and TFTP with real clients (udhcpc, dhclient, atftp, curl, dnsmasq) in
# network namespaces of our own (as root)
netns: release
	$(CARGO) test --workspace --locked --test netns -- --ignored --nocapture --test-threads=1

# QEMU end to end (as root): real firmware, PXE over a tap in our own netns;
# two scenarios at a time (each in its own namespace, lines tagged with its
# name), longest first (tests/e2e/ORDER), one virtual CPU each so that two
# VMs share the two cores evenly
E2E_THREADS ?= 2
METALBOOT_VM_CPUS ?= 1
e2e: assets release deb
	@$(MAKE) --no-print-directory e2e-built

# the QEMU scenarios on what `e2e` builds first (`make test` builds it
# beside the tiers before)
e2e-built: deps
	@rm -f target/e2e/timings.tsv
	@METALBOOT_VM_CPUS=$(METALBOOT_VM_CPUS) tools/e2e-run $(E2E_THREADS) $(CARGO); rc=$$?; \
	echo "e2e scenario times (s):"; column -t target/e2e/timings.tsv 2>/dev/null || cat target/e2e/timings.tsv; \
	awk '{ t += $$2 } END { printf "total %.1f s for %d scenarios\n", t, NR }' target/e2e/timings.tsv; exit $$rc

# the Debian package (target/deb/*.deb), checked by lintian: any error fails
deb: deps
	tools/make-deb $(CARGO)

# side by side with dnsmasq in our own namespaces, and QEMU boots and installs
# (as root); report in target/bench/report.md
bench: assets release
	$(CARGO) build --release --locked -p metalboot-e2e --bins
	target/release/metalboot-bench

# dhcp_handle runs without debug assertions (-O): dhcproto 0.12 has
# debug_assert!s on option lengths that malformed packets trip; release
# builds, which we ship, do not
FUZZ_SECS ?= 120
fuzz:
	cd netboot-server/fuzz && \
	cargo +nightly fuzz run -O dhcp_handle -- -max_total_time=$(FUZZ_SECS) -print_final_stats=1 && \
	cargo +nightly fuzz run tftp_packet -- -max_total_time=$(FUZZ_SECS) -print_final_stats=1

golden:
	UPDATE_GOLDEN=1 $(CARGO) test -p metalboot --test it -- golden::
	UPDATE_GOLDEN=1 $(CARGO) test -p metalboot-installer --test it -- grubcfg::
	@git status --short netboot-server/tests/golden installer/tests/golden

demo: assets release
	$(CARGO) run --release --locked -p metalboot-e2e --bin metalboot-demo
