//! Who hands out addresses on a scenario's provisioning network, and the
//! server's `[dhcp]` for it.

/// Who hands out addresses on the provisioning network.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dhcp {
    /// metalboot itself (full DHCP).
    Full,
    /// A dnsmasq on another host of the network; metalboot in proxy mode.
    ProxyBesideDnsmasq,
    /// metalboot (full DHCP), the VM behind a DHCP relay on a subnet of its
    /// own (see `relay`).
    FullBehindRelay,
}

pub(crate) fn dhcp_config(d: Dhcp) -> &'static str {
    match d {
        Dhcp::Full => "[dhcp]\nmode = \"full\"\ninterface = \"br0\"\nsubnet = \"10.99.0.0/24\"\nrange = [\"10.99.0.100\", \"10.99.0.150\"]\n",
        Dhcp::ProxyBesideDnsmasq => "[dhcp]\nmode = \"proxy\"\ninterface = \"br0\"\n",
        Dhcp::FullBehindRelay => "[dhcp]\nmode = \"full\"\ninterface = \"br0\"\nsubnet = \"10.99.0.0/24\"\nrange = [\"10.99.0.100\", \"10.99.0.150\"]\n\
                                  [[dhcp.subnets]]\nsubnet = \"10.98.1.0/24\"\nrange = [\"10.98.1.100\", \"10.98.1.150\"]\nrouter = \"10.98.1.1\"\n",
    }
}
