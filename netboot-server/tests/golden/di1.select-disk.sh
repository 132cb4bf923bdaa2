#!/bin/sh
# metalboot disk selector for di1: 'path=/dev/sda'
set -u
SYS=${METALBOOT_SYSFS:-/sys}
MOUNTS=${METALBOOT_MOUNTS:-/proc/mounts}
WANT_PATH='/dev/sda'
WANT_SERIAL=''
WANT_WWN=''
WANT_MODEL=''
MIN_SIZE=''
MIN_TEXT=''
MAX_SIZE=''
MAX_TEXT=''
WIPE='0'
SELECTOR='path=/dev/sda'
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
	report select-disk failed "$1"
	exit 1
}

# first line of a sysfs file, NULs and surrounding blanks dropped
attr() {
	[ -r "$1" ] || return 0
	head -n 1 "$1" | tr -d '\000' | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//'
}

serial_of() {
	s=$(attr "$1/serial")
	[ -n "$s" ] || s=$(attr "$1/device/serial")
	if [ -z "$s" ] && [ -r "$1/device/vpd_pg80" ]; then
		s=$(tail -c +5 "$1/device/vpd_pg80" | tr -d '\000' | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')
	fi
	printf '%s' "$s"
}

wwn_of() {
	w=$(attr "$1/wwid")
	[ -n "$w" ] || w=$(attr "$1/device/wwid")
	printf '%s' "$w"
}

norm_wwn() {
	printf '%s' "$1" | tr 'A-Z' 'a-z' | sed -e 's/^0x//' -e 's/^naa\.//' -e 's/^eui\.//'
}

partitions_of() {
	p=""
	for e in "$1"/*; do
		[ -e "$e/partition" ] || continue
		p="$p${p:+, }${e##*/}"
	done
	printf '%s' "$p"
}

in_use() { # the disk or one of its partitions is mounted
	for dev in "/dev/$1" $(for e in "$2"/*; do [ -e "$e/partition" ] && echo "/dev/${e##*/}"; done); do
		grep -q "^$dev " "$MOUNTS" 2>/dev/null && return 0
	done
	return 1
}

# why disk $1 (sysfs dir $2) does not match; empty when it does
mismatch() {
	name=$1 d=$2 path=/dev/$1
	[ "$(attr "$d/removable")" = 1 ] && { echo removable; return; }
	[ "$(attr "$d/ro")" = 1 ] && { echo read-only; return; }
	in_use "$name" "$d" && { echo "in use by the running system"; return; }
	if [ -n "$WANT_PATH" ] && [ "$WANT_PATH" != "$path" ]; then echo "path is $path"; return; fi
	if [ -n "$WANT_SERIAL" ]; then
		s=$(serial_of "$d")
		[ "$s" = "$WANT_SERIAL" ] || { echo "serial is ${s:-unknown}"; return; }
	fi
	if [ -n "$WANT_WWN" ]; then
		w=$(wwn_of "$d")
		{ [ -n "$w" ] && [ "$(norm_wwn "$w")" = "$(norm_wwn "$WANT_WWN")" ]; } || { echo "wwn is ${w:-unknown}"; return; }
	fi
	if [ -n "$WANT_MODEL" ]; then
		m=$(attr "$d/device/model")
		[ "$m" = "$WANT_MODEL" ] || { echo "model is ${m:-unknown}"; return; }
	fi
	bytes=$(( $(attr "$d/size") * 512 ))
	if [ -n "$MIN_SIZE" ] && [ "$bytes" -lt "$MIN_SIZE" ]; then echo "$bytes bytes is below min_size $MIN_TEXT"; return; fi
	if [ -n "$MAX_SIZE" ] && [ "$bytes" -gt "$MAX_SIZE" ]; then echo "$bytes bytes is above max_size $MAX_TEXT"; return; fi
}

seen="" matches="" count=0
for d in "$SYS"/block/*; do
	[ -d "$d" ] || continue
	name=${d##*/}
	case $name in loop* | ram* | zram* | sr* | fd* | dm-* | md* | nbd* | mtdblock*) continue ;; esac
	size=$(attr "$d/size")
	[ -n "$size" ] && [ "$size" != 0 ] || continue
	why=$(mismatch "$name" "$d")
	seen="$seen${seen:+, }/dev/$name ($why)"
	if [ -z "$why" ]; then
		matches="$matches${matches:+, }/dev/$name"
		count=$((count + 1))
		chosen=$name chosen_dir=$d
	fi
done

case $count in
0) fail "no disk matches $SELECTOR; disks seen: ${seen:-none}" ;;
1) ;;
*) fail "$count disks match $SELECTOR: $matches; refusing to guess" ;;
esac
parts=$(partitions_of "$chosen_dir")
if [ -n "$parts" ] && [ "$WIPE" != 1 ]; then
	fail "/dev/$chosen matches $SELECTOR but holds partitions ($parts); set disk.wipe = true to allow wiping it"
fi
report select-disk done "installing to /dev/$chosen ($SELECTOR)"
echo "/dev/$chosen"
