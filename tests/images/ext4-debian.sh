#!/bin/bash
# A Debian system installed the classic way, not by metalboot: an ext4
# root, a static /32 by systemd-networkd, root's authorized_keys, and no
# kexec-tools (unless KEXEC=keep). For BIOS: one partition on an MBR disk,
# GRUB in the MBR gap. For UEFI: a GPT disk with an ESP and the root, GRUB
# at the removable-media path (no NVRAM entry needed). Made from metalboot's
# root filesystem image with a loop device (as root).
#
# usage: ext4-debian.sh IMG SIZE ROOTFS_TAR_ZST MAC IP GATEWAY AUTHORIZED_KEYS_FILE [bios|uefi]
# optional environment: IP6 (address/prefix) and GATEWAY6, a static IPv6;
# ADMIN, a user the same key logs in as, with passwordless sudo; KEXEC=keep.
# prints the new system's SSH host public keys on standard output.
set -euo pipefail
. "$(dirname "$0")/common.sh"
export MTOOLS_SKIP_CHECK=1
img=$1 size=$2 rootfs=$3 mac=$4 ip=$5 gw=$6 keys=$7 firmware=${8:-bios}
case $firmware in bios | uefi) ;; *) echo "firmware: bios or uefi, not $firmware" >&2; exit 2 ;; esac

work=$(mktemp -d)
mnt=$work/root
mkdir "$mnt"
loop=
cleanup() {
	umount -R "$mnt" 2>/dev/null || true
	if [ -n "$loop" ]; then
		# partitions left behind would stay on the loop device for its
		# next user: remove them, again while one is still busy
		b=${loop##*/}
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			parts=$(find "/sys/block/$b" -maxdepth 1 -name "${b}p*")
			[ -n "$parts" ] || break
			partx -d "$loop" 2>/dev/null || sleep 1
		done
		losetup -d "$loop" || true
	fi
	rmdir "$mnt" "$work" 2>/dev/null || true
}
trap cleanup EXIT

rm -f "$img"
truncate -s "$size" "$img"
if [ "$firmware" = bios ]; then
	printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$img"
	n=1
else
	printf 'label: gpt\nstart=2048, size=100MiB, type=U\ntype=L\n' | sfdisk -q "$img"
	n=2
fi
# -P: the kernel reads the partition table, replacing any partitions a
# previous user left on the device; no udev here: if the nodes do not
# appear, partx makes the kernel's partitions match the table
loop=$(losetup -f --show -P "$img")
for _ in $(seq 30); do [ -b "${loop}p$n" ] && break; sleep 0.1; done
[ -b "${loop}p$n" ] || partx -u "$loop" || partx -a "$loop"
for _ in 1 2 3 4 5; do [ -b "${loop}p$n" ] && break; sleep 1; done
part=${loop}p$n
mkfs.ext4 -q -L old-root "$part"
uuid=$(blkid -s UUID -o value "$part")
mount "$part" "$mnt"
tar --zstd -xpf "$rootfs" -C "$mnt" --numeric-owner

echo "UUID=$uuid / ext4 errors=remount-ro 0 1" >"$mnt/etc/fstab"
if [ "$firmware" = uefi ]; then
	# the build machine's kernel may lack vfat: the ESP is written with
	# mtools, not mounted
	esp=${loop}p1
	mkfs.vfat -n OLD-ESP "$esp" >/dev/null
	mkdir -p "$mnt/boot/efi"
	echo "UUID=$(blkid -s UUID -o value "$esp") /boot/efi vfat umask=0077 0 1" >>"$mnt/etc/fstab"
fi
echo old-system >"$mnt/etc/hostname"
static_network "$mnt" "$mac" "$ip" "$gw" "${IP6:-}" "${GATEWAY6:-}"
authorize_root "$mnt" "$keys"
ln -sf /run/systemd/resolve/resolv.conf "$mnt/etc/resolv.conf"

# a private /dev for the chroot: the loop nodes, and the by-uuid link
# grub-mkconfig looks for before it writes root=UUID=
mount -t tmpfs -o mode=755 dev "$mnt/dev"
cp -a /dev/null /dev/zero /dev/full /dev/random /dev/urandom "$loop" "${loop}"p* "$mnt/dev/"
mkdir -p "$mnt/dev/disk/by-uuid"
ln -s "../../$(basename "$part")" "$mnt/dev/disk/by-uuid/$uuid"
mount -t proc proc "$mnt/proc"
mount -t sysfs sys "$mnt/sys"

chroot "$mnt" ssh-keygen -A >/dev/null
[ -z "${ADMIN:-}" ] || authorize_admin "$mnt" "$ADMIN" "$keys"
[ "${KEXEC:-}" = keep ] || chroot "$mnt" dpkg --purge kexec-tools >/dev/null
sed -i -e 's/^GRUB_TIMEOUT=.*/GRUB_TIMEOUT=2/' \
	-e 's/^GRUB_CMDLINE_LINUX=.*/GRUB_CMDLINE_LINUX="console=ttyS0,115200"/' \
	-e 's/^GRUB_CMDLINE_LINUX_DEFAULT=.*/GRUB_CMDLINE_LINUX_DEFAULT=""/' "$mnt/etc/default/grub"
echo 'GRUB_TERMINAL=console' >>"$mnt/etc/default/grub"
if [ "$firmware" = bios ]; then
	chroot "$mnt" grub-install --target=i386-pc "$loop" >/dev/null 2>&1 ||
		{ chroot "$mnt" grub-install --target=i386-pc "$loop"; exit 1; }
else
	# what grub-install --removable does, by hand (it insists on seeing the
	# ESP mounted as FAT): the modules under /boot/grub, and a core image
	# that finds /boot/grub by the root's UUID, at the removable-media path
	chroot "$mnt" cp -r /usr/lib/grub/x86_64-efi /boot/grub/
	printf "search.fs_uuid %s root\nset prefix=(\$root)'/boot/grub'\n" "$uuid" >"$mnt/tmp/load.cfg"
	chroot "$mnt" grub-mkimage -O x86_64-efi -c /tmp/load.cfg -p /boot/grub -o /tmp/BOOTX64.EFI \
		part_gpt part_msdos ext2 search_fs_uuid
	mmd -i "$esp" ::/EFI ::/EFI/BOOT
	mcopy -i "$esp" "$mnt/tmp/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
	rm -f "$mnt/tmp/load.cfg" "$mnt/tmp/BOOTX64.EFI"
fi
chroot "$mnt" update-grub >/dev/null 2>&1 || { chroot "$mnt" update-grub; exit 1; }
grep -q "root=UUID=$uuid" "$mnt/boot/grub/grub.cfg" || { echo "grub.cfg does not boot root=UUID=$uuid" >&2; exit 1; }
cat "$mnt"/etc/ssh/ssh_host_*_key.pub
