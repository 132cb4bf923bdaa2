//! The host inventory: TOML files of `[[host]]` tables that an operator keeps
//! in git, either one file or a directory of `*.toml` files (read in name
//! order). Loaded once; every host is validated, names and MACs must be unique,
//! and each error names the file, the host and the field.

use anyhow::{anyhow, bail, Context, Result};
use metalboot_spec::{one_line, parse_error, quote, HostSpec, MacAddr};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Most characters of a parser's message (which may quote the value).
const MESSAGE_MAX: usize = 200;

/// A loaded, validated inventory.
#[derive(Debug, Default, Clone)]
pub struct Inventory {
    hosts: Vec<HostSpec>,
    by_name: HashMap<String, usize>,
    by_mac: HashMap<MacAddr, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InventoryFile {
    #[serde(default)]
    host: Vec<toml::Value>,
}

impl Inventory {
    /// Loads `path` (a file, or a directory of `*.toml` files).
    pub fn load(path: &Path) -> Result<Inventory> {
        let files = if path.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading inventory directory {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            v.sort();
            v
        } else {
            vec![path.to_path_buf()]
        };
        let mut texts = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).with_context(|| format!("reading inventory {}", f.display()))?;
            texts.push((f.display().to_string(), text));
        }
        Self::from_sources(texts.iter().map(|(n, t)| (n.as_str(), t.as_str())))
    }

    /// Builds an inventory from `(file name, text)` pairs.
    pub fn from_sources<'a>(sources: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Inventory> {
        let mut inv = Inventory::default();
        let mut origin: HashMap<String, String> = HashMap::new();
        for (file, text) in sources {
            let parsed: InventoryFile =
                toml::from_str(text).map_err(|e| anyhow!("{file}: {}", one_line(e.message().trim(), MESSAGE_MAX)))?;
            for (i, value) in parsed.host.into_iter().enumerate() {
                let label = match value.get("name").and_then(|n| n.as_str()) {
                    Some(n) => format!("host {}", quote(n)),
                    None => format!("host #{}", i + 1),
                };
                let host: HostSpec = serde_path_to_error::deserialize(value).map_err(|e| {
                    let path = e.path().to_string();
                    anyhow!("{file}: {label}: {}", parse_error(&path, e.into_inner().message()))
                })?;
                host.validate().map_err(|e| anyhow!("{file}: {label}: {e}"))?;
                let idx = inv.hosts.len();
                if let Some(prev) = origin.get(&host.name) {
                    bail!("{file}: {label}: field `name`: duplicate host name, also defined in {prev}");
                }
                for (j, mac) in host.macs.iter().enumerate() {
                    if let Some(&other) = inv.by_mac.get(mac) {
                        bail!(
                            "{file}: {label}: field `macs[{j}]`: {mac} already belongs to host {}",
                            quote(&inv.hosts[other].name)
                        );
                    }
                    inv.by_mac.insert(*mac, idx);
                }
                origin.insert(host.name.clone(), file.to_string());
                inv.by_name.insert(host.name.clone(), idx);
                inv.hosts.push(host);
            }
        }
        Ok(inv)
    }

    /// All hosts in load order.
    pub fn hosts(&self) -> &[HostSpec] {
        &self.hosts
    }

    /// The host called `name`.
    pub fn get(&self, name: &str) -> Option<&HostSpec> {
        self.by_name.get(name).map(|&i| &self.hosts[i])
    }

    /// The host that boots with `mac`.
    pub fn by_mac(&self, mac: &MacAddr) -> Option<&HostSpec> {
        self.by_mac.get(mac).map(|&i| &self.hosts[i])
    }
}
