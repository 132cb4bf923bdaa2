# Shared by the test system builders (sourced).

# static_network ROOT MAC IP GATEWAY [IP6/PREFIX GATEWAY6]: a static /32
# with an off-link gateway for the NIC with MAC, by systemd-networkd, and a
# static IPv6 address and gateway if given; no router advertisements taken.
static_network() {
	cat >"$1/etc/systemd/network/10-static.network" <<EOF
[Match]
MACAddress=$2

[Network]
Address=$3/32
${5:+Address=$5}
IPv6AcceptRA=no

[Route]
Gateway=$4
GatewayOnLink=yes
EOF
	if [ -n "${6:-}" ]; then
		printf '\n[Route]\nGateway=%s\n' "$6" >>"$1/etc/systemd/network/10-static.network"
	fi
}

# authorize_admin ROOT NAME KEYS_FILE: a user NAME whose key logs in and
# who runs anything through passwordless sudo (the rented-server shape).
authorize_admin() {
	chroot "$1" useradd -m -s /bin/bash "$2"
	install -d -m 700 "$1/home/$2/.ssh"
	install -m 600 "$3" "$1/home/$2/.ssh/authorized_keys"
	chroot "$1" chown -R "$2:$2" "/home/$2/.ssh"
	echo "$2 ALL=(ALL) NOPASSWD:ALL" >"$1/etc/sudoers.d/$2"
	chmod 440 "$1/etc/sudoers.d/$2"
}

# authorize_root ROOT KEYS_FILE: root's authorized_keys.
authorize_root() {
	install -d -m 700 "$1/root/.ssh"
	install -m 600 "$2" "$1/root/.ssh/authorized_keys"
}
