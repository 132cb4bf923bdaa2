#!/bin/sh
# metalboot: after each snapshot run (btrbk.service's ExecStopPost), tells the
# server this host's snapshots and how the run ended. The report is signed
# with the host's SSH host key (ssh-keygen -Y sign, namespace
# metalboot-status); the server checks it against the key it recorded at
# install. METALBOOT_STATUS_URL, METALBOOT_HOST, METALBOOT_SNAPSHOT_DIR (and
# METALBOOT_PIN for https) come from /etc/metalboot/status.env. A server that cannot be reached is not retried:
# the next run reports again.
set -u
. /etc/metalboot/status.env
tmp=$(mktemp -d) || exit 0
trap 'rm -rf "$tmp"' EXIT

# printable ASCII only: JSON-safe once \ and " are escaped
json_str() { printf '"%s"' "$(printf '%s' "$1" | LC_ALL=C tr -cd '\040-\176' | sed 's/[\\"]/\\&/g')"; }

snaps=""
for s in $(btrfs subvolume list -o "$METALBOOT_SNAPSHOT_DIR" 2>/dev/null | awk '{print $NF}' | sed 's|.*/||'); do
    snaps="${snaps:+$snaps,}$(json_str "$s")"
done
errors=""
if [ -n "${INVOCATION_ID:-}" ]; then
    journalctl -q -o cat _SYSTEMD_INVOCATION_ID="$INVOCATION_ID" 2>/dev/null | grep -E '^(ERROR|WARNING: .*(abort|fail))' |
        tail -n 10 | cut -c1-1000 > "$tmp/errors"
    while IFS= read -r l; do errors="${errors:+$errors,}$(json_str "$l")"; done < "$tmp/errors"
fi
printf '{"host":%s,"at":%s,"snapshots":[%s],"run":{"result":%s,"exit_status":%s,"errors":[%s]}}' \
    "$(json_str "$METALBOOT_HOST")" "$(date +%s)" "$snaps" "$(json_str "${SERVICE_RESULT:-success}")" "$(json_str "${EXIT_STATUS:-}")" "$errors" \
    > "$tmp/body"
ssh-keygen -Y sign -q -n metalboot-status -f /etc/ssh/ssh_host_ed25519_key "$tmp/body" || exit 0
set --
if [ -n "${METALBOOT_PIN:-}" ]; then
    set -- --insecure --pinnedpubkey "$METALBOOT_PIN"
fi
code=$(curl -sS -o "$tmp/reply" -w '%{http_code}' --max-time 20 -H 'Content-Type: application/json' \
    -H "Metalboot-Signature: $(grep -v -- ----- "$tmp/body.sig" | tr -d '\n')" \
    --data-binary @"$tmp/body" "$@" "$METALBOOT_STATUS_URL") || code=000
echo "metalboot: status reported to $METALBOOT_STATUS_URL: HTTP $code $(head -c 300 "$tmp/reply" 2>/dev/null | tr -d '\n' | grep -v '^{' || true)"
exit 0
