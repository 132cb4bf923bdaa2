//! Where the server is reachable, as scripts and plans name it.

use metalboot_spec::Pin;

/// Where the server is reachable, and what consoles kernels get.
pub struct Site<'a> {
    /// Base URL without trailing slash: plain HTTP, what iPXE and the
    /// Debian installer use.
    pub base_url: &'a str,
    /// With `[server.tls]`: the HTTPS base URL and the server key's pin,
    /// where our installer (and the installed system's phone-home) goes.
    pub tls: Option<(&'a str, Pin)>,
    /// Console kernel arguments.
    pub console: &'a [String],
    /// Debian installer settings.
    pub debian: &'a crate::config::DebianInstallerConfig,
}

impl Site<'_> {
    /// Where our installer's API calls go: HTTPS with `[server.tls]`.
    pub fn api_base(&self) -> &str {
        self.tls.map_or(self.base_url, |(u, _)| u)
    }

    /// The pin that goes with [`Site::api_base`].
    pub fn pin(&self) -> Option<Pin> {
        self.tls.map(|(_, p)| p)
    }
}
