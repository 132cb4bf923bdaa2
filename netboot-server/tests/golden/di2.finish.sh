#!/bin/sh
# metalboot finish for di2
set -u
TARGET=${METALBOOT_TARGET:-/target}
EVENTS='http://192.0.2.1:8080/v1/hosts/di2/events'
REPORT_URL='http://192.0.2.1:8080/v1/hosts/di2/report'
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
	report finish failed "$1"
	exit 1
}

umask 077
mkdir -p "$TARGET/root/.ssh" || fail "cannot create /root/.ssh"
printf '%s\n' 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example' >"$TARGET/root/.ssh/authorized_keys" ||
	fail "cannot write /root/.ssh/authorized_keys"
DROP_IN='/etc/ssh/sshd_config.d/00-metalboot.conf'
mkdir -p "$TARGET/etc/ssh/sshd_config.d"
printf '%s\n' '# written by metalboot: SSH logins as the inventory'\''s [host.ssh] and [host.admin] say' 'PermitRootLogin no' 'PasswordAuthentication no' 'KbdInteractiveAuthentication no' >"$TARGET$DROP_IN" || fail "cannot write $DROP_IN"
chmod 644 "$TARGET$DROP_IN"

ADMIN='deploy'
home=$(awk -F: -v u="$ADMIN" '$1 == u { print $6 }' "$TARGET/etc/passwd")
[ -n "$home" ] && [ "$home" != / ] || fail "the installer made no user $ADMIN"
chroot "$TARGET" usermod --password '*' --shell '/bin/bash' "$ADMIN" ||
	fail "cannot set the password and shell of $ADMIN"
mkdir -p "$TARGET$home/.ssh" || fail "cannot create $home/.ssh"
printf '%s\n' 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl deploy@example' >"$TARGET$home/.ssh/authorized_keys" ||
	fail "cannot write $home/.ssh/authorized_keys"
chmod 700 "$TARGET$home/.ssh" && chmod 600 "$TARGET$home/.ssh/authorized_keys" &&
	chroot "$TARGET" chown -R "$ADMIN:" "$home/.ssh" || fail "cannot give $home/.ssh to $ADMIN"
SUDOERS='/etc/sudoers.d/metalboot-deploy'
mkdir -p "$TARGET/etc/sudoers.d"
printf '%s\n' '# written by metalboot: the inventory'\''s [host.admin] has sudo = true' 'deploy ALL=(ALL) NOPASSWD:ALL' >"$TARGET$SUDOERS" || fail "cannot write $SUDOERS"
chmod 440 "$TARGET$SUDOERS"
chroot "$TARGET" visudo --check --quiet --file "$SUDOERS" || fail "visudo refuses $SUDOERS"

mkdir -p "$TARGET/etc/metalboot" "$TARGET/usr/local/sbin" "$TARGET/etc/systemd/system/multi-user.target.wants"
printf "METALBOOT_INSTALLED_URL='%s'\nMETALBOOT_TOKEN='%s'\n" 'http://192.0.2.1:8080/v1/hosts/di2/installed' "$TOKEN" \
	>"$TARGET/etc/metalboot/phone-home.env" || fail "cannot write the phone-home settings"
cat >"$TARGET/usr/local/sbin/metalboot-phone-home" <<'METALBOOT_EOF'
#!/bin/sh
# metalboot first-boot phone-home. Reads METALBOOT_INSTALLED_URL and
# METALBOOT_TOKEN from /etc/metalboot/phone-home.env, posts this host's SSH
# host public keys and addresses, retrying with backoff until the server
# accepts, then disables itself and forgets the token. With METALBOOT_PIN
# (an https:// URL) curl trusts the server by its pinned key, not by a CA:
# --insecure turns off the CA check only, --pinnedpubkey still applies.
#
# The same script, given another environment file, is the report of a
# keeping reinstall's previous system that came back (`rolled-back.env`,
# with METALBOOT_WHY from the new system): its unit is named after the file.
# After a trial boot (/usr/local/sbin/metalboot-trial) the answer decides:
# accepted, the new system stays; refused, the host goes back.
set -u
ENV=${1:-/etc/metalboot/phone-home.env}
UNIT="metalboot-$(basename "$ENV" .env).service"
TRIAL=/usr/local/sbin/metalboot-trial
TRIAL_ENV=/etc/metalboot/trial.env
on_trial=
[ -x "$TRIAL" ] && [ -e "$TRIAL_ENV" ] && on_trial=1
. "$ENV"
set --
if [ -n "${METALBOOT_PIN:-}" ]; then
    set -- --insecure --pinnedpubkey "$METALBOOT_PIN"
fi

json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"]/\\&/g')"; }

body() {
    keys=""
    for f in /etc/ssh/ssh_host_*_key.pub; do
        [ -r "$f" ] || continue
        k=$(cut -d' ' -f1,2 "$f")
        keys="${keys:+$keys,}$(json_str "$k")"
    done
    addrs=""
    for a in $(ip -o addr show scope global | awk '{print $4}'); do
        addrs="${addrs:+$addrs,}$(json_str "$a")"
    done
    why=""
    [ -n "${METALBOOT_WHY:-}" ] && why=",\"rolled_back\":$(json_str "$METALBOOT_WHY")"
    printf '{"host_keys":[%s],"addresses":[%s]%s}' "$keys" "$addrs" "$why"
}

delay=2
while :; do
    if [ -n "$on_trial" ]; then
        # one try at a time with the trial's deadline (see metalboot-trial)
        exec 9>/run/metalboot-trial.lock
        flock 9
        if [ ! -e "$TRIAL_ENV" ]; then
            echo "metalboot: the trial is over (the host goes back to its previous system); not phoning home"
            exit 0
        fi
    fi
    code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 20 \
        -H 'Content-Type: application/json' --data "$(body)" "$@" \
        "${METALBOOT_INSTALLED_URL}?token=${METALBOOT_TOKEN}") || code=000
    case "$code" in
    200)
        echo "metalboot: phoned home to ${METALBOOT_INSTALLED_URL}"
        [ -n "$on_trial" ] && METALBOOT_TRIAL_LOCKED=1 "$TRIAL" commit
        break ;;
    403)
        echo "metalboot: server refused the token (host re-armed or already installed); giving up"
        [ -n "$on_trial" ] && METALBOOT_TRIAL_LOCKED=1 "$TRIAL" roll-back "the server refused its token"
        break ;;
    *)
        echo "metalboot: phone-home got HTTP $code; retrying in ${delay}s"
        [ -n "$on_trial" ] && exec 9>&-
        sleep "$delay"
        [ "$delay" -lt 60 ] && delay=$((delay * 2)) ;;
    esac
done
systemctl disable "$UNIT" >/dev/null 2>&1
rm -f "$ENV"
exit 0
METALBOOT_EOF
cat >"$TARGET/etc/systemd/system/metalboot-phone-home.service" <<'METALBOOT_EOF'
# Installed by metalboot: reports the first boot of a freshly installed host
# to the metalboot server (its addresses and SSH host keys), once.
[Unit]
Description=metalboot first-boot phone-home
Wants=network-online.target
After=network-online.target ssh.service
ConditionPathExists=/etc/metalboot/phone-home.env

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/metalboot-phone-home
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
METALBOOT_EOF
chmod 755 "$TARGET/usr/local/sbin/metalboot-phone-home"
chmod 644 "$TARGET/etc/systemd/system/metalboot-phone-home.service"
ln -sf /etc/systemd/system/metalboot-phone-home.service \
	"$TARGET/etc/systemd/system/multi-user.target.wants/metalboot-phone-home.service" ||
	fail "cannot enable the phone-home unit"

keys=""
for f in "$TARGET"/etc/ssh/ssh_host_*_key.pub; do
	[ -r "$f" ] || continue
	k=$(cut -d' ' -f1,2 "$f")
	keys="$keys${keys:+,}\"$k\""
done
[ -n "$keys" ] || fail "the target has no SSH host keys (is openssh-server installed?)"
chroot "$TARGET" curl -fsS -o /dev/null --max-time 30 -H 'Content-Type: application/json' \
	--data "{\"host_keys\":[$keys],\"addresses\":[]}" "$REPORT_URL?token=$TOKEN" ||
	fail "the final report did not reach $REPORT_URL"
