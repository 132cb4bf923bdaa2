//! Kernel module selection: resolve wanted module names to files and their
//! dependency closure from `modules.dep` (as written by `depmod`).

use anyhow::{Context, Result};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

/// Modules the installer needs on real servers and on QEMU: disks, NICs,
/// filesystems and what BTRFS pulls in at mount time (the kernel asks a real
/// `modprobe` for the checksum algorithms).
pub const WANTED: &[&str] = &[
    // virtual hardware
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "virtio_net",
    "virtio_console",
    "virtio_rng",
    // storage
    "nvme",
    "ahci",
    "ata_piix",
    "sd_mod",
    "sr_mod",
    "mptsas",
    "megaraid_sas",
    "mpt3sas",
    "aacraid",
    "hpsa",
    "smartpqi",
    "usb_storage",
    "uas",
    "xhci_pci",
    "ehci_pci",
    "loop",
    // NICs
    "e1000",
    "e1000e",
    "igb",
    "igc",
    "ixgbe",
    "i40e",
    "ice",
    "r8169",
    "tg3",
    "bnxt_en",
    "bnx2",
    "bnx2x",
    "mlx4_en",
    "mlx5_core",
    "vmxnet3",
    "8139cp",
    "8139too",
    "pcnet32",
    "ne2k_pci",
    "af_packet",
    // filesystems and what they pull in
    "btrfs",
    "vfat",
    "nls_cp437",
    "nls_iso8859_1",
    "nls_utf8",
    "nls_ascii",
    "ext4",
    "efivarfs",
    "crc32c_generic",
    "crc32c_intel",
    "xxhash_generic",
    "blake2b_generic",
    "sha256_generic",
];

/// Modules without which the installer cannot work on QEMU; missing one is an error.
pub const REQUIRED: &[&str] = &["virtio_blk", "virtio_net", "btrfs", "vfat", "e1000", "e1000e", "nvme", "ahci"];

/// `modules.dep` parsed: canonical name → (relative path, dependency paths).
pub struct ModuleIndex {
    by_name: HashMap<String, (String, Vec<String>)>,
    by_path: HashMap<String, Vec<String>>,
    builtin: HashSet<String>,
}

/// Module names use `_` and `-` interchangeably; canonical form is `_`.
pub fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

fn name_of(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split(".ko").next().unwrap_or(base);
    canonical(stem)
}

impl ModuleIndex {
    /// Reads `modules.dep` and `modules.builtin` from `dir` (`lib/modules/<release>`).
    pub fn load(dir: &Path) -> Result<ModuleIndex> {
        let dep = std::fs::read_to_string(dir.join("modules.dep"))
            .with_context(|| format!("reading {}/modules.dep", dir.display()))?;
        let builtin = std::fs::read_to_string(dir.join("modules.builtin")).unwrap_or_default();
        Ok(Self::parse(&dep, &builtin))
    }

    /// Parses the two files' texts.
    pub fn parse(dep: &str, builtin: &str) -> ModuleIndex {
        let mut by_name = HashMap::new();
        let mut by_path = HashMap::new();
        for line in dep.lines() {
            let Some((path, deps)) = line.split_once(':') else { continue };
            let deps: Vec<String> = deps.split_whitespace().map(str::to_string).collect();
            by_name.insert(name_of(path), (path.to_string(), deps.clone()));
            by_path.insert(path.to_string(), deps);
        }
        let builtin = builtin.lines().map(name_of).collect();
        ModuleIndex { by_name, by_path, builtin }
    }

    /// The files (relative to the modules dir) for `names` and everything they
    /// depend on, plus the names that are neither modules nor built in.
    pub fn closure(&self, names: &[&str]) -> (BTreeSet<String>, Vec<String>) {
        let mut files = BTreeSet::new();
        let mut missing = Vec::new();
        let mut stack: Vec<String> = Vec::new();
        for n in names {
            let c = canonical(n);
            match self.by_name.get(&c) {
                Some((p, _)) => stack.push(p.clone()),
                None if self.builtin.contains(&c) => {}
                None => missing.push(c),
            }
        }
        while let Some(p) = stack.pop() {
            if files.insert(p.clone()) {
                if let Some(deps) = self.by_path.get(&p) {
                    stack.extend(deps.iter().cloned());
                }
            }
        }
        (files, missing)
    }

    /// True if `name` is compiled into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&canonical(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str =
        "kernel/fs/btrfs/btrfs.ko: kernel/lib/raid6/raid6_pq.ko kernel/crypto/xor.ko kernel/lib/libcrc32c.ko\n\
kernel/lib/raid6/raid6_pq.ko:\n\
kernel/crypto/xor.ko:\n\
kernel/lib/libcrc32c.ko:\n\
kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko: kernel/drivers/ptp/ptp.ko\n\
kernel/drivers/ptp/ptp.ko: kernel/drivers/pps/pps_core.ko\n\
kernel/drivers/pps/pps_core.ko:\n";

    #[test]
    fn closure_follows_dependencies_and_reports_missing() {
        let idx = ModuleIndex::parse(DEP, "kernel/drivers/block/virtio_blk.ko\n");
        let (files, missing) = idx.closure(&["btrfs", "e1000e", "virtio-blk", "nosuch"]);
        assert_eq!(files.len(), 7);
        assert!(files.contains("kernel/drivers/pps/pps_core.ko"));
        assert_eq!(missing, ["nosuch"]);
        assert!(idx.is_builtin("virtio_blk"));
    }
}
