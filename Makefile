# metalboot — the doors. `make test` and `make demo` install what they need.

SHELL := /bin/bash
CARGO ?= cargo

# Debian packages the build and the test tiers use.
APT_PACKAGES := build-essential pkg-config ca-certificates git curl cpio zstd tar kmod busybox-static \
	btrfs-progs dosfstools util-linux fdisk openssh-client libbtrfsutil-dev libclang-dev clang \
	qemu-system-x86 qemu-utils ovmf ipxe mmdebstrap

.PHONY: all build deps test unit lint golden demo help initramfs rootfs assets

all: build

help:
	@echo "make test    install dependencies, lint, run every test tier"
	@echo "make demo    PXE-install a QEMU VM with the embedded default config"
	@echo "make golden  regenerate golden files after an intended template change"
	@echo "make lint    cargo fmt --check and clippy -D warnings"

deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install the Rust stable toolchain"; exit 1; }

build: deps
	$(CARGO) build --workspace --locked

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# every tier that runs on the build machine; root-only tests are marked
# #[ignore] so a plain `cargo test` as a normal user still passes
unit: deps
	$(CARGO) test --workspace --locked -- --include-ignored

ASSETS ?= target/assets
CACHE ?= target/assets-cache

initramfs: deps
	$(CARGO) build --release --locked -p metalboot-installer -p metalboot-initramfs
	target/release/metalboot-initramfs initramfs --installer target/release/metalboot-installer --out $(ASSETS) --cache $(CACHE)

rootfs: deps
	$(CARGO) build --release --locked -p metalboot-initramfs
	target/release/metalboot-initramfs rootfs --out $(ASSETS) --cache $(CACHE)

assets: initramfs rootfs

test: lint unit

golden:
	UPDATE_GOLDEN=1 $(CARGO) test -p metalboot --test golden
	@git status --short netboot-server/tests/golden

demo: build
	@echo "make demo: the PXE demo (a QEMU VM installed by metalboot) needs the installer"
	@echo "initramfs, root filesystem image and DHCP/TFTP, which are not built yet."
	@echo "What runs today: the HTTP server core. Try:"
	@echo "  cargo run -p metalboot -- --config netboot-server/tests/fixtures/metalboot.toml render ipxe web1"
	@exit 1
