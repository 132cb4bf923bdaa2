#!/bin/sh
# metalboot-trial: the first boot of a system written by a reinstall that
# kept data is a trial. /boot/grub/custom.cfg boots it once (the ESP's
# /metalboot/grubenv says when); every later boot is the previous system's,
# until this system phoned home. `commit`: it did, so it boots from now on
# and the previous root is kept read-only; `roll-back WHY`: it did not (in
# time, or the server refused it), so the host boots its previous system
# again, which tells the server it is back.
set -u
ENV=/etc/metalboot/trial.env
exec 9>/run/metalboot-trial.lock
flock 9
[ -r "$ENV" ] || exit 0
. "$ENV"
old="$METALBOOT_SNAPSHOT_DIR/${METALBOOT_PREVIOUS##*/}"
say() {
    echo "metalboot: $*"
    echo "metalboot: $*" >/dev/console 2>/dev/null || true
}
case "${1:-}" in
commit)
    rm -f /boot/grub/custom.cfg /boot/efi/metalboot/grubenv
    sync
    rm -f "$old/etc/systemd/system/multi-user.target.wants/metalboot-rolled-back.service" \
        "$old/etc/metalboot/rolled-back.env"
    btrfs property set -ts "$old" ro true || say "could not make $old read-only"
    systemctl disable metalboot-trial.timer >/dev/null 2>&1
    systemctl stop metalboot-trial.timer >/dev/null 2>&1
    rm -f "$ENV"
    sync
    say "the new system phoned home: it boots from now on; the previous root is kept read-only as $METALBOOT_PREVIOUS"
    ;;
roll-back)
    why=$(printf '%s' "${2:-}" | tr -d "'\\\\")
    printf "METALBOOT_WHY='%s'\n" "$why" >>"$old/etc/metalboot/rolled-back.env"
    sync
    say "the new system did not phone home ($why): rebooting into the previous system ($METALBOOT_PREVIOUS)"
    systemctl reboot
    ;;
*)
    echo "usage: metalboot-trial commit | roll-back WHY" >&2
    exit 2
    ;;
esac
