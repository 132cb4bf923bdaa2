//! Golden files: every template × fixture host, byte for byte. Regenerate
//! with `make golden` (UPDATE_GOLDEN=1) after an intended change and review
//! the diff; CI fails on drift.

use crate::common;
use metalboot::inventory::Inventory;
use metalboot::render::Renderer;
use metalboot::script::{self, Platform, Site};
use metalboot_spec::ImageRef;
use std::path::PathBuf;

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn check(name: &str, actual: &str, drift: &mut Vec<String>) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    match std::fs::read_to_string(&path) {
        Ok(want) if want == actual => {}
        Ok(want) => {
            drift.push(format!("{name} differs (run `make golden` and review):\n--- want\n{want}\n--- got\n{actual}"))
        }
        Err(_) => drift.push(format!("{name} missing (run `make golden`)")),
    }
}

#[test]
fn rendered_files_match_golden() {
    let r = Renderer::embedded().unwrap();
    let cfg = common::fixture_config(std::path::Path::new("/tmp"));
    let inv = Inventory::load(&common::fixtures().join("inventory")).unwrap();
    let site =
        Site { base_url: "http://192.0.2.1:8080", tls: None, console: &cfg.console, debian: &cfg.debian_installer };
    let mut drift = Vec::new();
    let mut count = 0;
    for h in inv.hosts() {
        let mac = h.macs[0];
        for (p, suffix) in [(Platform::Pcbios, "pcbios"), (Platform::Efi, "efi")] {
            let s = script::install_script(&r, &site, h, &mac, p, TOKEN).unwrap();
            check(&format!("{}.install.{suffix}.ipxe", h.name), &s, &mut drift);
            count += 1;
        }
        let preseed = script::preseed(&r, &site, h, TOKEN).unwrap();
        check(&format!("{}.preseed.cfg", h.name), &preseed, &mut drift);
        if h.method == metalboot_spec::Method::DebianInstaller {
            for name in script::DI_SCRIPTS {
                let s = script::di_script(&r, &site, h, TOKEN, name).unwrap().unwrap();
                check(&format!("{}.{name}", h.name), &s, &mut drift);
                count += 1;
            }
        }
        let image = ImageRef {
            url: format!("http://192.0.2.1:8080/assets/{}", h.image),
            sha256: "ab".repeat(32),
            size: 123_456_789,
        };
        let plan = serde_json::to_string_pretty(&metalboot::plan::plan(&site, h, image)).unwrap() + "\n";
        check(&format!("{}.plan.json", h.name), &plan, &mut drift);
        count += 2;
    }
    for (p, suffix) in [(Platform::Pcbios, "pcbios"), (Platform::Efi, "efi")] {
        for (reason, tag) in [("unknown machine", "unknown"), ("host is installed", "installed")] {
            check(&format!("local.{tag}.{suffix}.ipxe"), &script::local_script(&r, p, reason).unwrap(), &mut drift);
            count += 1;
        }
    }
    let di_hosts = inv.hosts().iter().filter(|h| h.method == metalboot_spec::Method::DebianInstaller).count();
    assert_eq!(count, inv.hosts().len() * 4 + 4 + di_hosts * script::DI_SCRIPTS.len());
    // no stale golden files
    let expected = count;
    let on_disk = std::fs::read_dir(golden_dir()).unwrap().count();
    assert!(drift.is_empty(), "{}", drift.join("\n\n"));
    assert_eq!(on_disk, expected, "golden dir has files no test renders; remove them");
}
