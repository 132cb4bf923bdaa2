#!/bin/sh
# metalboot-trial: the first boot of a system written by a reinstall that
# kept data is a trial. /boot/grub/custom.cfg boots it once (the ESP's
# /metalboot/grubenv says when); every later boot is the previous system's,
# until this system phoned home. `commit`: it did, so it boots from now on
# and the previous root is kept read-only; `roll-back WHY`: it did not (in
# time, or the server refused it), so the host boots its previous system
# again, which tells the server it is back.
#
# Both hold /run/metalboot-trial.lock (the phone-home holds it around each
# try and passes METALBOOT_TRIAL_LOCKED=1): an accepted phone-home and the
# deadline never both act, and whichever comes second finds nothing to do.
set -u
ENV=/etc/metalboot/trial.env
if [ -z "${METALBOOT_TRIAL_LOCKED:-}" ]; then
    exec 9>/run/metalboot-trial.lock
    flock 9
fi
[ -r "$ENV" ] || exit 0
. "$ENV"
at() { echo "$METALBOOT_SNAPSHOT_DIR/${1##*/}"; }
old=$(at "$METALBOOT_PREVIOUS")
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
    for p in $METALBOOT_REPLACED; do
        btrfs property set -ts "$(at "$p")" ro true || say "could not make $p read-only"
    done
    systemctl disable metalboot-trial.timer >/dev/null 2>&1
    systemctl stop metalboot-trial.timer >/dev/null 2>&1
    rm -f "$ENV"
    sync
    say "the new system phoned home: it boots from now on; the previous root is kept read-only as $METALBOOT_PREVIOUS"
    ;;
roll-back)
    why=$(printf '%s' "${2:-}" | tr -d "'\\\\")
    printf "METALBOOT_WHY='%s'\n" "$why" >>"$old/etc/metalboot/rolled-back.env"
    # this system's trial is over: booted again by hand, it stays put
    rm -f "$ENV"
    systemctl disable metalboot-trial.timer >/dev/null 2>&1
    sync
    say "the new system did not phone home ($why): rebooting into the previous system ($METALBOOT_PREVIOUS)"
    systemctl reboot
    ;;
*)
    echo "usage: metalboot-trial commit | roll-back WHY" >&2
    exit 2
    ;;
esac
