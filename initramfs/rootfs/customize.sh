#!/bin/sh
# mmdebstrap customize hook for metalboot's root filesystem image. $1 is the
# new root. Leaves no SSH host keys, no machine-id and no password: the
# installer makes those per host.
set -eu
root="$1"
rm -f "$root"/etc/ssh/ssh_host_*
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
chroot "$root" usermod -p '*' root
chroot "$root" systemctl enable systemd-networkd.service systemd-resolved.service ssh.service >/dev/null
chroot "$root" systemctl disable metalboot-phone-home.service >/dev/null 2>&1 || true
rm -f "$root/etc/hostname"
# kexec-tools is there for `metalboot reinstall`; a plain reboot stays a
# firmware reboot (network boot, the install-once guard)
if [ -f "$root/etc/default/kexec" ]; then
	sed -i 's/^LOAD_KEXEC=.*/LOAD_KEXEC=false/' "$root/etc/default/kexec"
fi
# the installer writes the per-host resolv.conf link, network files and fstab
: > "$root/etc/fstab"
rm -rf "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
# the initramfs with the degraded-boot script (synced in under
# /etc/initramfs-tools), so a raid1 install needs no rebuild
chroot "$root" update-initramfs -u -k all >/dev/null
