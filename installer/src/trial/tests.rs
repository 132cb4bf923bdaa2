use super::*;

const DEBIAN: &str = "set default=\"0\"
menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-R' {
\tload_video
\tinsmod btrfs
\tsearch --no-floppy --fs-uuid --set=root R
\techo\t'Loading Linux 6.1.0-9-amd64 ...'
\tlinux\t/@/boot/vmlinuz-6.1.0-9-amd64 root=UUID=R ro rootflags=subvol=@ console=ttyS0,115200n8 quiet
\techo\t'Loading initial ramdisk ...'
\tinitrd\t/@/boot/initrd.img-6.1.0-9-amd64
}
submenu 'Advanced options' {
\tmenuentry 'recovery' {
\t\tlinux\t/@/boot/vmlinuz-6.1.0-9-amd64 root=UUID=R ro single
\t}
}
";

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[test]
fn the_first_entry_is_the_default_one() {
    let e = first_entry(DEBIAN).unwrap();
    assert_eq!(e.linux, "/@/boot/vmlinuz-6.1.0-9-amd64");
    assert_eq!(e.args, words("root=UUID=R ro rootflags=subvol=@ console=ttyS0,115200n8 quiet"));
    assert_eq!(e.initrd, ["/@/boot/initrd.img-6.1.0-9-amd64"]);
    assert_eq!(first_entry("set default=0\n"), None);
    assert_eq!(first_entry("menuentry 'x' {\n\tlinux /vmlinuz\n}\n"), None, "no initrd");
}

#[test]
fn a_moved_root_boots_from_where_it_is_now() {
    let e = first_entry(DEBIAN).unwrap().moved("@", "@snapshots/@.replaced.20261206T030000Z").unwrap();
    assert_eq!(e.linux, "/@snapshots/@.replaced.20261206T030000Z/boot/vmlinuz-6.1.0-9-amd64");
    assert_eq!(e.initrd, ["/@snapshots/@.replaced.20261206T030000Z/boot/initrd.img-6.1.0-9-amd64"]);
    assert_eq!(
        e.args,
        words("root=UUID=R ro rootflags=subvol=/@snapshots/@.replaced.20261206T030000Z console=ttyS0,115200n8 quiet")
    );
    // other flags stay, subvolid goes (it would name another subvolume)
    let mut f = first_entry(DEBIAN).unwrap();
    f.args = words("root=UUID=R rootflags=compress=zstd,subvolid=256,subvol=/@");
    assert_eq!(
        f.moved("@", "@snapshots/x").unwrap().args,
        words("root=UUID=R rootflags=compress=zstd,subvol=/@snapshots/x")
    );
    // no rootflags: the default subvolume would be the new root
    f.args = words("root=UUID=R ro");
    assert_eq!(f.moved("@", "@snapshots/x").unwrap().args, words("root=UUID=R ro rootflags=subvol=/@snapshots/x"));
    // a kernel outside the root subvolume cannot follow it
    f.linux = "/@boot/vmlinuz".into();
    assert!(f.moved("@", "@snapshots/x").unwrap_err().contains("/@boot/vmlinuz is not in the root subvolume @"));
}

#[test]
fn custom_cfg_boots_the_trial_once_then_the_previous_system() {
    let new = first_entry(DEBIAN).unwrap();
    let old = new.moved("@", "@snapshots/@.replaced.T").unwrap();
    let c = custom_cfg("R", "@snapshots/@.replaced.T", &old, &new);
    assert!(c.contains("menuentry 'Previous system (@snapshots/@.replaced.T)' --id metalboot-previous {\n"), "{c}");
    assert!(c.contains("\tlinux\t/@snapshots/@.replaced.T/boot/vmlinuz-6.1.0-9-amd64 root=UUID=R ro rootflags=subvol=/@snapshots/@.replaced.T console=ttyS0,115200n8 quiet\n"), "{c}");
    assert!(c.contains("menuentry 'New system, on trial' --id metalboot-trial {\n"), "{c}");
    assert!(c.contains("rootflags=subvol=@ console=ttyS0,115200n8 quiet panic=10\n"), "{c}");
    assert!(c.contains("search --no-floppy --file --set=metalboot_env /metalboot/grubenv\n"), "{c}");
    assert!(c.contains("load_env --file (${metalboot_env})/metalboot/grubenv metalboot_trial\n"), "{c}");
    // the trial only when `old` was written first; otherwise the previous system
    let tail = &c[c.find("if [ \"${metalboot_trial}\" = new ]").unwrap()..];
    assert_eq!(
        tail,
        "if [ \"${metalboot_trial}\" = new ]; then\n  set metalboot_trial=old\n  if save_env --file (${metalboot_env})/metalboot/grubenv metalboot_trial; then\n    set default=metalboot-trial\n    set fallback=metalboot-previous\n  else\n    set default=metalboot-previous\n  fi\nelse\n  set default=metalboot-previous\nfi\n"
    );
}

#[test]
fn the_environment_block_is_grubs_1024_bytes() {
    let b = env_block(&[("metalboot_trial", "new")]);
    assert_eq!(b.len(), 1024);
    assert!(b.starts_with("# GRUB Environment Block\nmetalboot_trial=new\n###"));
    assert!(b.bytes().skip(45).all(|c| c == b'#'));
}
