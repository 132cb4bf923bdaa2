//! Loading what the server serves: the config file, the inventory it
//! names (every host checked, every host's image a configured asset) and
//! the templates, as `serve`, `check-config` and a reload do.

use crate::config::{Config, ASSET_ROOTFS, ASSET_ROOTFS_CLOUD};
use crate::inventory::Inventory;
use crate::render::Renderer;
use anyhow::{bail, Context, Result};
use metalboot_spec::Method;
use std::path::Path;

/// Loads config, inventory and templates, as `serve` and `check-config` do.
pub fn load_all(config_path: Option<&Path>) -> Result<(Config, Inventory, Renderer)> {
    let config = Config::load(config_path)?;
    let inventory = match &config.inventory {
        Some(p) => {
            let inv = Inventory::load(p).context("loading the inventory")?;
            check_host_images(&config, &inv).with_context(|| format!("in inventory {}", p.display()))?;
            inv
        }
        None => Inventory::default(),
    };
    let renderer = match &config.templates {
        Some(dir) => Renderer::from_dir(dir)?,
        None => Renderer::embedded()?,
    };
    Ok((config, inventory, renderer))
}

/// Every `image`-method host's image must be an asset the server knows:
/// otherwise its installer would ask for a plan that can never be made.
pub fn check_host_images(config: &Config, inventory: &Inventory) -> Result<()> {
    for h in inventory.hosts().iter().filter(|h| h.method == Method::Image) {
        if !config.assets.contains_key(&h.image) {
            bail!(
                "host {}: field `image`: {} is not a configured asset (the asset directory's {ASSET_ROOTFS} \
                 and {ASSET_ROOTFS_CLOUD}, or a name under [assets.files])",
                metalboot_spec::quote(&h.name),
                metalboot_spec::quote(&h.image)
            );
        }
    }
    Ok(())
}

/// The `image`-method hosts whose image file is not there (yet): host,
/// image, path. Their installers get no plan until it is.
pub fn hosts_missing_their_image<'a>(
    config: &'a Config,
    inventory: &'a Inventory,
) -> Vec<(&'a str, &'a str, &'a Path)> {
    inventory
        .hosts()
        .iter()
        .filter(|h| h.method == Method::Image)
        .filter_map(|h| config.assets.get(&h.image).map(|p| (h, p)))
        .filter(|(_, p)| !p.is_file())
        .map(|(h, p)| (h.name.as_str(), h.image.as_str(), p.as_path()))
        .collect()
}
