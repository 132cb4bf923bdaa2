use super::*;
use crate::RootLogin;

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example";

fn host(extra: &str) -> HostSpec {
    toml::from_str(&format!("name = \"h1\"\ndisk = {{ path = \"/dev/vda\" }}\n{extra}")).unwrap()
}

#[test]
fn without_an_admin_root_logs_in_with_a_key_and_ansible_is_root() {
    let h = host(&format!("ssh_authorized_keys = [\"{KEY}\"]"));
    h.validate().unwrap();
    assert_eq!(h.admin_user(), None);
    assert_eq!(h.sshd_settings(), SshdSettings::default());
    assert_eq!(h.sshd_settings().permit_root_login, RootLogin::ProhibitPassword);
    assert_eq!((h.ansible_user(), h.ansible_become(), h.ssh_login()), ("root", false, "root"));
    let h = host(&format!("ssh_authorized_keys = [\"{KEY}\"]\nhandoff = {{ ansible_user = \"admin\" }}"));
    assert_eq!((h.ansible_user(), h.ansible_become()), ("admin", false));
}

#[test]
fn an_admin_turns_root_login_off_and_becomes_the_ansible_user() {
    let h = host(&format!("ssh_authorized_keys = [\"{KEY}\"]\n[admin]\nname = \"ops\""));
    h.validate().unwrap();
    let a = h.admin_user().unwrap();
    assert_eq!((a.name.as_str(), a.sudo, a.shell.as_str()), ("ops", true, "/bin/bash"));
    assert_eq!(a.ssh_authorized_keys, [KEY]);
    assert_eq!(h.sshd_settings().permit_root_login, RootLogin::No);
    assert!(!h.sshd_settings().password_authentication);
    assert_eq!((h.ansible_user(), h.ansible_become(), h.ssh_login()), ("ops", true, "ops"));

    let h = host(&format!(
        "ssh_authorized_keys = [\"{KEY}\"]\nhandoff = {{ ansible_user = \"root\" }}\n\
         [admin]\nname = \"ops\"\n[ssh]\npermit_root_login = true"
    ));
    h.validate().unwrap();
    assert_eq!(h.sshd_settings().permit_root_login, RootLogin::ProhibitPassword);
    assert_eq!((h.ansible_user(), h.ansible_become()), ("root", false));

    let h = host(&format!("ssh_authorized_keys = [\"{KEY}\"]\n[admin]\nname = \"ops\"\nsudo = false"));
    assert_eq!((h.ansible_user(), h.ansible_become()), ("ops", false), "no sudo, no become");
}

#[test]
fn an_admin_with_its_own_keys_is_a_login_without_root_keys() {
    let h = host(&format!("[admin]\nname = \"ops\"\nssh_authorized_keys = [\"{KEY}\"]"));
    h.validate().unwrap();
    let e = host("[admin]\nname = \"ops\"").validate().unwrap_err();
    assert_eq!(e.field, "admin.ssh_authorized_keys");
}

#[test]
fn login_errors_name_the_field() {
    let keys = format!("ssh_authorized_keys = [\"{KEY}\"]\n");
    let cases = [
        ("[admin]\nname = \"root\"", "admin.name"),
        ("[admin]\nname = \"Ops\"", "admin.name"),
        ("[admin]\nname = \"ops\"\nssh_authorized_keys = []", "admin.ssh_authorized_keys"),
        ("[admin]\nname = \"ops\"\nshell = \"zsh\"", "admin.shell"),
        ("[ssh]\npermit_root_login = false", "ssh.permit_root_login"),
        ("handoff = { ansible_user = \"a b\" }", "handoff.ansible_user"),
    ];
    for (extra, field) in cases {
        let e = host(&format!("{keys}{extra}")).validate().unwrap_err();
        assert_eq!(e.field, field, "{extra}: {e}");
    }
    let unknown = toml::from_str::<HostSpec>(&format!(
        "name = \"h1\"\ndisk = {{ path = \"/dev/vda\" }}\n{keys}[ssh]\npermit_root = true"
    ));
    assert!(unknown.is_err(), "a misspelt [host.ssh] key is refused");
}

fn host_with(disks: &str, extra: &str) -> Result<HostSpec, SpecError> {
    let h: HostSpec =
        toml::from_str(&format!("name = \"h1\"\n{disks}\nssh_authorized_keys = [\"{KEY}\"]\n{extra}")).unwrap();
    h.validate().map(|_| h)
}

#[test]
fn two_disks_with_raid1_are_one_host_on_both() {
    let h = host_with("disks = [ { serial = \"A\" }, { serial = \"B\", wipe = true } ]", "[layout]\nraid = \"raid1\"")
        .unwrap();
    assert_eq!(h.disk, None);
    assert_eq!(h.disk_selectors().len(), 2);
    assert!(h.multi_disk());
    assert_eq!(h.describe_disks(), "raid1 of [serial=A] + [serial=B]");
    assert_eq!(h.layout.raid, crate::Raid::Raid1);
    let one = host_with("disk = { serial = \"A\" }", "").unwrap();
    assert_eq!((one.disk_selectors().len(), one.multi_disk(), one.describe_disks().as_str()), (1, false, "serial=A"));
}

#[test]
fn disk_and_disks_errors_name_the_field() {
    let raid = "[layout]\nraid = \"raid1\"";
    let cases = [
        ("disk = { serial = \"A\" }\ndisks = [ { serial = \"B\" }, { serial = \"C\" } ]", raid, "disks", "not both"),
        ("", "", "disk", "missing"),
        ("disks = []", "", "disk", "missing"),
        ("disks = [ { serial = \"A\" } ]", raid, "disks", "lists one disk"),
        ("disk = { serial = \"A\" }", raid, "layout.raid", "at least two disks"),
        ("disks = [ { serial = \"A\" }, { serial = \"B\" } ]", "", "layout.raid", "2 disks need layout.raid"),
        ("disks = [ { serial = \"A\" }, { serial = \"a b\\n\" } ]", raid, "disks[1].serial", ""),
        (
            "disks = [ { serial = \"A\" }, { serial = \"A\", wipe = true } ]",
            raid,
            "disks[1]",
            "(serial=A) names the same disk as disks[0] (serial=A): the same rules",
        ),
        (
            "disks = [ { path = \"/dev/sda\" }, { serial = \"B\" }, { path = \"/dev/sda\", model = \"M\" } ]",
            raid,
            "disks[2]",
            "names the same disk as disks[0] (path=/dev/sda): the same path",
        ),
        (
            "disks = [ { wwn = \"naa.5000C500A1B2C3D4\" }, { wwn = \"0x5000c500a1b2c3d4\" } ]",
            raid,
            "disks[1]",
            "the same wwn",
        ),
    ];
    for (disks, extra, field, text) in cases {
        let e = host_with(disks, extra).unwrap_err();
        assert_eq!(e.field, field, "{disks}: {e}");
        assert!(e.to_string().contains(text), "{disks}: {e}");
    }
    let unknown = toml::from_str::<HostSpec>("name = \"h1\"\ndisk = { serial = \"A\" }\n[layout]\nraid = \"raid5\"");
    assert!(unknown.is_err(), "only none and raid1");
}

#[test]
fn the_debian_installer_refuses_several_disks_at_load() {
    let di = "method = \"debian-installer\"";
    let e =
        host_with("disks = [ { serial = \"A\" }, { serial = \"B\" } ]", &format!("{di}\n[layout]\nraid = \"raid1\""))
            .unwrap_err();
    assert_eq!(e.field, "disks");
    assert!(e.to_string().contains("not supported with method = \"debian-installer\"; use the image method"), "{e}");
    host_with("disk = { serial = \"A\" }", di).unwrap();
}
