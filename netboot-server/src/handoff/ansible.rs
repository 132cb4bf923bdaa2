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

/// One host's variables.
pub fn hostvars(spec: &HostSpec, rec: &HostRecord) -> Value {
    let mut v = Map::new();
    if let Some(h) = ansible_host(spec, rec) {
        v.insert("ansible_host".into(), json!(h));
    }
    v.insert("ansible_user".into(), json!(spec.ansible_user()));
    v.insert("metalboot_macs".into(), json!(spec.macs.iter().map(|m| m.to_string()).collect::<Vec<_>>()));
    v.insert("metalboot_labels".into(), json!(spec.labels));
    v.insert("metalboot_method".into(), json!(spec.method));
    v.insert("metalboot_disk".into(), json!(spec.disk.describe()));
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
