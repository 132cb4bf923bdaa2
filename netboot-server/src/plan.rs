//! The install plan of an inventory host: what the installer is told to
//! do, and where it reports.

use crate::site::Site;
use metalboot_spec::{Endpoints, HostSpec, ImageRef, InstallPlan, PLAN_VERSION};

/// The report URLs of `host` on `base`.
pub(crate) fn endpoints(base: &str, host: &str, status: bool) -> Endpoints {
    Endpoints {
        events: format!("{base}/v1/hosts/{host}/events"),
        report: format!("{base}/v1/hosts/{host}/report"),
        installed: format!("{base}/v1/hosts/{host}/installed"),
        status: if status { format!("{base}/v1/hosts/{host}/status") } else { String::new() },
        rolled_back: String::new(),
    }
}

/// The install plan for `host` and its `image`; endpoints on [`Site::api_base`].
pub fn plan(site: &Site, host: &HostSpec, image: ImageRef) -> InstallPlan {
    let mut network = host.network.clone();
    if network.mac.is_none() {
        network.mac = host.macs.first().copied();
    }
    InstallPlan {
        version: PLAN_VERSION,
        hostname: host.name.clone(),
        macs: host.macs.clone(),
        disk: host.disk.clone(),
        disks: host.disks.clone(),
        layout: host.layout.clone(),
        network,
        image,
        ssh_authorized_keys: host.ssh_authorized_keys.clone(),
        root_password_hash: host.root_password_hash.clone(),
        admin: host.admin_user(),
        ssh: host.sshd_settings(),
        kernel_args: host.kernel_args.clone(),
        on_failure: host.on_failure,
        endpoints: endpoints(site.api_base(), &host.name, host.snapshots.is_some()),
        snapshots: host.snapshots.clone(),
        keep: Vec::new(),
        rollback_after: None,
    }
}

/// A keeping reinstall's plan (`reinstall --keep`): the subvolumes kept, the
/// trial's deadline (`rollback_after`, else the default) and where the
/// previous system says it is back.
pub fn keeping(plan: &mut InstallPlan, keep: Vec<String>, rollback_after: Option<u32>) {
    if keep.is_empty() {
        return;
    }
    plan.keep = keep;
    plan.rollback_after = Some(rollback_after.unwrap_or(metalboot_spec::plan::DEFAULT_ROLLBACK_AFTER_SECS));
    if let Some(base) = plan.endpoints.installed.strip_suffix("/installed") {
        plan.endpoints.rolled_back = format!("{base}/rolled-back");
    }
}
