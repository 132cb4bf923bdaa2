# Shared by the test system builders (sourced).

# static_network ROOT MAC IP GATEWAY: a static /32 with an off-link gateway
# for the NIC with MAC, by systemd-networkd.
static_network() {
	cat >"$1/etc/systemd/network/10-static.network" <<EOF
[Match]
MACAddress=$2

[Network]
Address=$3/32

[Route]
Gateway=$4
GatewayOnLink=yes
EOF
}

# authorize_root ROOT KEYS_FILE: root's authorized_keys.
authorize_root() {
	install -d -m 700 "$1/root/.ssh"
	install -m 600 "$2" "$1/root/.ssh/authorized_keys"
}
