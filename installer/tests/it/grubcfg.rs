//! grub.cfg written by the installer: the rendered file (golden), and every
//! case where it must leave the job to `update-grub`.

use metalboot_installer::grubcfg::{self, GrubConfig};
use metalboot_installer::render::grub_defaults;
use std::path::{Path, PathBuf};

/// Debian 12's `/etc/default/grub` as `grub2-common` ships it.
const DEBIAN_DEFAULTS: &str = "# If you change this file, run 'update-grub' afterwards to update
GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"
GRUB_CMDLINE_LINUX=\"\"
#GRUB_TERMINAL=console
#GRUB_DISABLE_OS_PROBER=false
";

const STOCK_40: &str = "#!/bin/sh\nexec tail -n +3 $0\n# This file provides an easy way to add custom menu entries.  Simply type the\n# menu entries you want to add after this comment.  Be careful not to change\n# the 'exec tail' line above.\n";
const STOCK_41: &str = "#!/bin/sh\ncat <<EOF\nif [ -f  \\${config_directory}/custom.cfg ]; then\n  source \\${config_directory}/custom.cfg\nelif [ -z \"\\${config_directory}\" -a -f  \\$prefix/custom.cfg ]; then\n  source \\$prefix/custom.cfg\nfi\nEOF\n";

fn plan_defaults() -> String {
    let plan: metalboot_spec::InstallPlan =
        serde_json::from_str(include_str!("../../../netboot-server/tests/golden/web1.plan.json")).unwrap();
    grub_defaults(&plan)
}

fn default_subvols() -> Vec<(String, String)> {
    metalboot_spec::Layout::default().subvolumes.iter().map(|s| (s.name.clone(), s.mountpoint.clone())).collect()
}

/// A new system's /boot, /etc/grub.d and /etc/default as the image has them.
fn system(dir: &Path, kernels: &[&str]) -> PathBuf {
    let t = dir.join("target");
    for d in ["boot/grub", "etc/grub.d", "etc/default/grub.d"] {
        std::fs::create_dir_all(t.join(d)).unwrap();
    }
    for k in kernels {
        std::fs::write(t.join(format!("boot/vmlinuz-{k}")), "").unwrap();
        std::fs::write(t.join(format!("boot/initrd.img-{k}")), "").unwrap();
        std::fs::write(t.join(format!("boot/config-{k}")), "").unwrap();
    }
    for s in ["00_header", "05_debian_theme", "10_linux", "20_linux_xen", "30_os-prober", "30_uefi-firmware", "README"]
    {
        std::fs::write(t.join("etc/grub.d").join(s), "#!/bin/sh\n").unwrap();
    }
    std::fs::write(t.join("etc/grub.d/40_custom"), STOCK_40).unwrap();
    std::fs::write(t.join("etc/grub.d/41_custom"), STOCK_41).unwrap();
    std::fs::write(t.join("etc/default/grub"), DEBIAN_DEFAULTS).unwrap();
    std::fs::write(t.join("etc/default/grub.d/metalboot.cfg"), plan_defaults()).unwrap();
    t
}

const UUID: &str = "a80c9ab0-132e-4059-9fb9-5c3695dd1954";

#[test]
fn renders_what_update_grub_would_boot() {
    let d = tempfile::tempdir().unwrap();
    let t = system(d.path(), &["6.1.0-57-cloud-amd64"]);
    let c = grubcfg::from_target(&t, UUID, &default_subvols()).unwrap();
    assert_eq!(c.kernel, "6.1.0-57-cloud-amd64");
    assert_eq!(c.boot_path, "/@/boot");
    assert_eq!(c.timeout, 1, "the installer's drop-in comes after Debian's file");
    assert_eq!(c.serial.as_deref(), Some("serial --unit=0 --speed=115200"));
    let text = grubcfg::render(&c);
    crate::golden::check(&text, "grub.cfg");
    // the lines update-grub writes for this system, as seen on an installed VM
    for want in [
        "\tlinux\t/@/boot/vmlinuz-6.1.0-57-cloud-amd64 root=UUID=a80c9ab0-132e-4059-9fb9-5c3695dd1954 ro rootflags=subvol=@ console=tty0 console=ttyS0,115200n8 quiet\n",
        "\tinitrd\t/@/boot/initrd.img-6.1.0-57-cloud-amd64\n",
        "\tsearch --no-floppy --fs-uuid --set=root a80c9ab0-132e-4059-9fb9-5c3695dd1954\n",
        "ro single rootflags=subvol=@ console=tty0 console=ttyS0,115200n8\n",
        "   save_env next_entry\n",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}

#[test]
fn the_shipped_custom_scripts_count_as_stock() {
    assert!(grubcfg::stock_custom("40_custom", STOCK_40));
    assert!(grubcfg::stock_custom("41_custom", STOCK_41));
    // and the ones on this machine, where grub2-common is installed
    for n in ["40_custom", "41_custom"] {
        if let Ok(text) = std::fs::read_to_string(Path::new("/etc/grub.d").join(n)) {
            assert!(grubcfg::stock_custom(n, &text), "/etc/grub.d/{n}:\n{text}");
        }
    }
    let own = format!("{STOCK_40}menuentry 'rescue' {{\n  linux /rescue\n}}\n");
    assert!(!grubcfg::stock_custom("40_custom", &own));
    let sourcing = STOCK_41.replace("fi\nEOF", "fi\nsource /etc/site.cfg\nEOF");
    assert!(!grubcfg::stock_custom("41_custom", &sourcing));
}

fn declined(edit: impl FnOnce(&Path), kernels: &[&str], want: &str) {
    let d = tempfile::tempdir().unwrap();
    let t = system(d.path(), kernels);
    edit(&t);
    let why = grubcfg::from_target(&t, UUID, &default_subvols()).unwrap_err();
    assert!(why.contains(want), "{why:?} does not say {want:?}");
}

#[test]
fn anything_else_is_left_to_update_grub() {
    let k = &["6.1.0-57-amd64"][..];
    declined(|_| {}, &["6.1.0-56-amd64", "6.1.0-57-amd64"], "2 kernels");
    declined(|_| {}, &[], "no kernel");
    declined(|t| std::fs::remove_file(t.join("boot/initrd.img-6.1.0-57-amd64")).unwrap(), k, "no initrd");
    declined(|t| std::fs::write(t.join("etc/grub.d/09_windows"), "#!/bin/sh\n").unwrap(), k, "09_windows");
    declined(
        |t| std::fs::write(t.join("etc/grub.d/40_custom"), format!("{STOCK_40}menuentry 'x' {{\n}}\n")).unwrap(),
        k,
        "40_custom has entries",
    );
    let add = |line: &'static str| {
        move |t: &Path| std::fs::write(t.join("etc/default/grub.d/zz-site.cfg"), format!("{line}\n")).unwrap()
    };
    declined(add("GRUB_DEFAULT=saved"), k, "GRUB_DEFAULT=saved");
    declined(add("GRUB_ENABLE_CRYPTODISK=y"), k, "GRUB_ENABLE_CRYPTODISK");
    declined(add("GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX nomodeset\""), k, "not a plain string");
    declined(add("GRUB_TERMINAL=gfxterm"), k, "GRUB_TERMINAL=gfxterm");
    declined(add("GRUB_TIMEOUT=soon"), k, "GRUB_TIMEOUT=soon");
    declined(add(". /etc/site-grub"), k, "not KEY=VALUE");
}

#[test]
fn later_files_override_earlier_ones() {
    let files = vec![
        ("/etc/default/grub".to_string(), DEBIAN_DEFAULTS.to_string()),
        ("/etc/default/grub.d/a.cfg".to_string(), "GRUB_CMDLINE_LINUX_DEFAULT=''\nGRUB_TIMEOUT=0\n".to_string()),
    ];
    let vars = grubcfg::parse_defaults(&files).unwrap();
    let (cmdline, default, timeout, serial) = grubcfg::settings(&vars).unwrap();
    assert_eq!((cmdline.as_str(), default.as_str(), timeout, serial), ("", "", 0, None));
}

#[test]
fn boot_may_live_in_a_subvolume_of_its_own() {
    let s = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    assert_eq!(grubcfg::boot_path(&s(&[("@", "/"), ("@home", "/home")])).as_deref(), Some("/@/boot"));
    assert_eq!(grubcfg::boot_path(&s(&[("@", "/"), ("@boot", "/boot")])).as_deref(), Some("/@boot"));
    assert_eq!(grubcfg::boot_path(&s(&[("@", "/"), ("@bootleg", "/bootleg")])).as_deref(), Some("/@/boot"));
    let c = GrubConfig {
        root_uuid: UUID.into(),
        root_subvol: "@".into(),
        boot_path: "/@boot".into(),
        kernel: "6.1.0-57-amd64".into(),
        cmdline: String::new(),
        cmdline_default: "quiet".into(),
        timeout: 5,
        serial: None,
        degraded: false,
    };
    let text = grubcfg::render(&c);
    assert!(text.contains("\tlinux\t/@boot/vmlinuz-6.1.0-57-amd64 root=UUID="), "{text}");
    assert!(text.contains("terminal_output console\n") && !text.contains("serial"), "{text}");
}

#[test]
fn a_raid1_system_gets_a_degraded_entry_after_the_default_and_recovery() {
    let d = tempfile::tempdir().unwrap();
    let t = system(d.path(), &["6.1.0-57-cloud-amd64"]);
    let script = t.join("etc/grub.d").join(metalboot_installer::degraded::GRUB_SCRIPT_NAME);
    std::fs::write(&script, metalboot_installer::degraded::grub_script()).unwrap();
    let c = grubcfg::from_target(&t, UUID, &default_subvols()).unwrap();
    assert!(c.degraded);
    let text = grubcfg::render(&c);
    crate::golden::check(&text, "grub-raid1.cfg");
    let titles: Vec<&str> = text.lines().filter(|l| l.starts_with("menuentry ")).collect();
    assert_eq!(titles.len(), 3);
    assert!(titles[0].starts_with("menuentry 'Debian GNU/Linux' "), "the default stays first and not degraded");
    assert!(titles[2].starts_with("menuentry 'Debian GNU/Linux (degraded: a disk is missing)' "), "{}", titles[2]);
    assert!(text.contains(
        "\tlinux\t/@/boot/vmlinuz-6.1.0-57-cloud-amd64 root=UUID=a80c9ab0-132e-4059-9fb9-5c3695dd1954 ro \
         rootflags=subvol=@,degraded console=tty0 console=ttyS0,115200n8 quiet metalboot.degraded=1\n"
    ));
    assert_eq!(text.matches("degraded").count(), 4, "only the third entry (title, id, rootflags, flag):\n{text}");
    // a changed script is someone else's: update-grub runs
    std::fs::write(&script, metalboot_installer::degraded::grub_script() + "echo extra\n").unwrap();
    let e = grubcfg::from_target(&t, UUID, &default_subvols()).unwrap_err();
    assert_eq!(e, "/etc/grub.d/11_metalboot_degraded is not the one this installer writes");
}
