use super::*;

fn plan(admin: serde_json::Value) -> InstallPlan {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../netboot-server/tests/golden/web1.plan.json")).unwrap();
    v["admin"] = admin;
    serde_json::from_value(v).unwrap()
}

#[test]
fn the_dry_run_names_the_admin_users_files() {
    let without = files_written(&plan(serde_json::Value::Null));
    assert_eq!(without.len(), FILES.len());
    let ops = serde_json::json!({
        "name": "ops",
        "ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq"],
        "sudo": true,
        "shell": "/bin/bash"
    });
    let with = files_written(&plan(ops.clone()));
    let at = with.iter().position(|f| f == SSHD_DROP_IN).unwrap();
    assert!(with[at + 1].contains("/home/ops (user ops, by useradd)"), "{with:?}");
    assert_eq!(with[at + 2], "/home/ops/.ssh/authorized_keys");
    assert_eq!(with[at + 3], "/etc/sudoers.d/metalboot-ops");
    assert_eq!(with.len(), FILES.len() + 3);
    let mut no_sudo = ops;
    no_sudo["sudo"] = false.into();
    assert!(!files_written(&plan(no_sudo)).iter().any(|f| f.contains("sudoers")));
}
