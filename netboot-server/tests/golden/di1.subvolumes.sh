#!/bin/sh
# metalboot subvolume layout for di1
set -u
TARGET=${METALBOOT_TARGET:-/target}
MOUNTS=${METALBOOT_MOUNTS:-/proc/mounts}
ROOT_SUBVOL='@'
EVENTS='http://192.0.2.1:8080/v1/hosts/di1/events'
TOKEN='0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'

urlencode() {
	printf '%s' "$1" | tr -d '\000-\037' | sed -e 's/%/%25/g' -e 's/ /%20/g' -e 's/&/%26/g' \
		-e 's/+/%2B/g' -e 's/#/%23/g' -e 's/?/%3F/g' -e 's/=/%3D/g' -e "s/'/%27/g" -e 's/"/%22/g'
}

report() { # step status message; the server may be away: never fatal
	wget -q -O /dev/null "$EVENTS/$1?token=$TOKEN&status=$2&message=$(urlencode "$3")" 2>/dev/null || true
}

fail() {
	echo "metalboot: $1" >&2
	report subvolumes failed "$1"
	[ -n "${TOP:-}" ] && umount "$TOP" 2>/dev/null
	exit 1
}

# btrfs from the installer's environment if it has one, else the target's
bt() {
	if command -v btrfs >/dev/null 2>&1; then
		btrfs "$@"
	else
		chroot "$TARGET" btrfs $(printf '%s\n' "$@" | sed "s#^$TARGET/#/#")
	fi
}

line=$(awk -v t="$TARGET" '$2 == t { l = $0 } END { print l }' "$MOUNTS")
[ -n "$line" ] || fail "$TARGET is not mounted"
set -- $line
dev=$1 fstype=$3 opts=$4
[ "$fstype" = btrfs ] || fail "$TARGET is $fstype on $dev, not btrfs"
current=$(printf '%s\n' "$opts" | tr , '\n' | sed -n 's#^subvol=/\{0,1\}##p')
[ -n "$current" ] || fail "the root of $TARGET is the top level of $dev, not a subvolume"

TOP=$TARGET/run/metalboot-top
mkdir -p "$TOP" && mount -t btrfs -o subvolid=5 "$dev" "$TOP" || fail "cannot mount the top level of $dev"

if [ "$current" != "$ROOT_SUBVOL" ]; then
	[ -e "$TOP/$ROOT_SUBVOL" ] && fail "$dev already has $ROOT_SUBVOL beside $current"
	mv "$TOP/$current" "$TOP/$ROOT_SUBVOL" || fail "cannot rename $current to $ROOT_SUBVOL"
fi
bt subvolume set-default "$TOP/$ROOT_SUBVOL" >/dev/null || fail "cannot make $ROOT_SUBVOL the default subvolume"

fstab=$TARGET/etc/fstab
rootdev=$(awk '$1 !~ /^#/ && $2 == "/" { print $1; exit }' "$fstab")
[ -n "$rootdev" ] || fail "$fstab has no line for /"
sed -i -e "/^[^#]/s#subvol=/\{0,1\}$current\([,[:space:]]\)#subvol=$ROOT_SUBVOL\1#" "$fstab" || fail "cannot edit $fstab"

# name mountpoint, one per line
while read -r name mp; do
	[ -n "$name" ] || continue
	[ -e "$TOP/$name" ] && fail "$dev already has a subvolume or file $name"
	bt subvolume create "$TOP/$name" >/dev/null || fail "cannot create subvolume $name"
	mkdir -p "$TARGET$mp"
	for e in "$TARGET$mp"/* "$TARGET$mp"/.[!.]* "$TARGET$mp"/..?*; do
		[ -e "$e" ] || [ -L "$e" ] || continue
		mv "$e" "$TOP/$name/" || fail "cannot move $e into $name"
	done
	mount -t btrfs -o "subvol=$name" "$dev" "$TARGET$mp" || fail "cannot mount $name on $mp"
	printf '%s %s btrfs defaults,subvol=%s 0 0\n' "$rootdev" "$mp" "$name" >>"$fstab"
done <<'EOF'
@snapshots /.snapshots
@home /home
@var_log /var/log
EOF

umount "$TOP" && rmdir "$TOP"
TOP=""

if [ -x "$TARGET/usr/sbin/update-grub" ]; then
	if command -v in-target >/dev/null 2>&1; then
		in-target update-grub || fail "update-grub failed in the target"
	else
		chroot "$TARGET" update-grub || fail "update-grub failed in the target"
	fi
fi
report subvolumes done "$ROOT_SUBVOL is / and the default subvolume; created @snapshots @home @var_log"
