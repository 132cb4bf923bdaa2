//! The dynamic Ansible inventory: the JSON `ansible-inventory` expects from
//! an inventory script's `--list` (groups, `_meta.hostvars`). Only installed
//! hosts are in it: they are the ones Ansible can reach, with host keys
//! already known.

use crate::sshkey::bare_address;
use crate::state::{HostRecord, HostState};
use metalboot_spec::HostSpec;
use serde_json::{json, Map, Value};

/// Where Ansible connects: the inventory's `handoff.ansible_host`, else the
/// first static address, else the first address the host reported.
pub fn ansible_host(spec: &HostSpec, rec: &HostRecord) -> Option<String> {
    if let Some(a) = spec.handoff.ansible_host {
        return Some(a.to_string());
    }
    if let Some(a) = spec.network.addresses.first() {
        return Some(a.addr.to_string());
    }
    rec.addresses.first().map(|a| bare_address(a).to_string())
}

/// One host's variables. Ansible connects as [`HostSpec::ansible_user`] and
/// becomes root with sudo (`ansible_become`) when that is the admin user
/// with passwordless sudo.
pub fn hostvars(spec: &HostSpec, rec: &HostRecord) -> Value {
    let mut v = Map::new();
    if let Some(h) = ansible_host(spec, rec) {
        v.insert("ansible_host".into(), json!(h));
    }
    v.insert("ansible_user".into(), json!(spec.ansible_user()));
    if spec.ansible_become() {
        v.insert("ansible_become".into(), json!(true));
    }
    v.insert("metalboot_macs".into(), json!(spec.macs.iter().map(|m| m.to_string()).collect::<Vec<_>>()));
    v.insert("metalboot_labels".into(), json!(spec.labels));
    v.insert("metalboot_method".into(), json!(spec.method));
    v.insert("metalboot_disk".into(), json!(spec.describe_disks()));
    v.insert("metalboot_image".into(), json!(spec.image));
    v.insert("metalboot_addresses".into(), json!(rec.addresses));
    v.insert("metalboot_installed_at".into(), json!(rec.installed_at));
    v.insert("metalboot_host_keys".into(), json!(rec.host_keys));
    Value::Object(v)
}

/// Ansible group names: letters, digits and `_` only.
pub fn group_name(label: &str) -> String {
    let g: String = label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if g.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{g}")
    } else {
        g
    }
}

/// The `--list` document for `hosts` (spec, record), names sorted.
pub fn inventory(hosts: &[(&HostSpec, &HostRecord)]) -> Value {
    let mut installed: Vec<&(&HostSpec, &HostRecord)> =
        hosts.iter().filter(|(_, r)| r.state == HostState::Installed).collect();
    installed.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let mut groups: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut ungrouped = Vec::new();
    let mut hostvars_all = Map::new();
    for (spec, rec) in &installed {
        hostvars_all.insert(spec.name.clone(), hostvars(spec, rec));
        if spec.labels.is_empty() {
            ungrouped.push(spec.name.clone());
        }
        for l in &spec.labels {
            groups.entry(group_name(l)).or_default().push(spec.name.clone());
        }
    }
    let mut doc = Map::new();
    let mut children: Vec<String> = groups.keys().cloned().collect();
    children.push("ungrouped".into());
    doc.insert("all".into(), json!({ "children": children }));
    for (g, members) in groups {
        doc.insert(g, json!({ "hosts": members }));
    }
    doc.insert("ungrouped".into(), json!({ "hosts": ungrouped }));
    doc.insert("_meta".into(), json!({ "hostvars": hostvars_all }));
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> HostSpec {
        let h: HostSpec = toml::from_str(&format!(
            "name = \"h1\"\ndisk = {{ path = \"/dev/vda\" }}\n\
             ssh_authorized_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq\"]\n{extra}"
        ))
        .unwrap();
        h.validate().unwrap();
        h
    }

    fn record() -> HostRecord {
        HostRecord {
            name: "h1".into(),
            state: HostState::Installed,
            failed_step: None,
            failed_error: None,
            host_keys: vec![],
            addresses: vec!["192.0.2.7/24".into()],
            backup_key: None,
            status: None,
            installed_at: None,
            updated_at: "1970-01-01T00:00:00Z".into(),
            progress: None,
        }
    }

    #[test]
    fn ansible_connects_as_the_admin_user_and_becomes_root_with_its_sudo() {
        let vars = |extra: &str| hostvars(&spec(extra), &record());
        let root = vars("");
        assert_eq!(root["ansible_user"], "root");
        assert!(root.get("ansible_become").is_none());
        let ops = vars("admin = { name = \"ops\" }");
        assert_eq!((&ops["ansible_user"], &ops["ansible_become"]), (&json!("ops"), &json!(true)));
        let no_sudo = vars("admin = { name = \"ops\", sudo = false }");
        assert_eq!(no_sudo["ansible_user"], "ops");
        assert!(no_sudo.get("ansible_become").is_none(), "ops cannot become root");
        let other = vars("handoff = { ansible_user = \"deploy\" }\nadmin = { name = \"ops\" }");
        assert_eq!(other["ansible_user"], "deploy");
        assert!(other.get("ansible_become").is_none(), "metalboot does not know deploy's sudo");
        let root_too = vars(
            "handoff = { ansible_user = \"root\" }\nadmin = { name = \"ops\" }\nssh = { permit_root_login = true }",
        );
        assert_eq!(root_too["ansible_user"], "root");
        assert!(root_too.get("ansible_become").is_none());
    }
}
