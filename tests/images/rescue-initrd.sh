#!/bin/bash
# A provider-style rescue system: metalboot's root filesystem image packed
# as one initramfs, so the running system's root is the kernel's rootfs in
# RAM and no disk holds anything it uses. A static /32 by systemd-networkd,
# root's authorized_keys, sshd with fresh host keys, nothing in fstab.
#
# usage: rescue-initrd.sh OUT_DIR ROOTFS_TAR_ZST MAC IP GATEWAY AUTHORIZED_KEYS_FILE
# writes OUT_DIR/vmlinuz and OUT_DIR/rescue.cpio.zst (boot them with
# rdinit=/sbin/init); prints the rescue system's SSH host public keys.
set -euo pipefail
. "$(dirname "$0")/common.sh"
out=$1 rootfs=$2 mac=$3 ip=$4 gw=$5 keys=$6

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir "$root"
tar --zstd -xpf "$rootfs" -C "$root" --numeric-owner

echo rescue >"$root/etc/hostname"
: >"$root/etc/fstab"
static_network "$root" "$mac" "$ip" "$gw"
authorize_root "$root" "$keys"
ssh-keygen -A -f "$root" >/dev/null

mkdir -p "$out"
kernel=$(ls "$root"/boot/vmlinuz-* | head -n 1)
cp "$kernel" "$out/vmlinuz"
# the kernel and any initrd stay outside: the rescue system does not need them in RAM
rm -f "$root"/boot/vmlinuz-* "$root"/boot/initrd.img-*
(cd "$root" && find . -xdev -print0 | cpio --null --create --format=newc --quiet) | zstd -1 -T0 -q >"$out/rescue.cpio.zst"
cat "$root"/etc/ssh/ssh_host_*_key.pub
