//! The operator API's side of `metalboot reinstall`: `POST
//! /v1/hosts/{name}/reinstall` takes what discovery found on the running
//! system (its NIC's MAC, the static network, the disk holding `/`), checks
//! it like inventory input, issues the install token and answers with the
//! kernel, initramfs and command line to kexec; `POST /v1/hosts/{name}/fail`
//! records a failure the installer could not report (it never reached us).

use super::api::authorize;
use super::{blocking, AppError, Bases, St};
use crate::api::{FailRequest, HostView, ReinstallBoot, ReinstallRequest};
use crate::script;
use crate::state::{hash_token, new_token};
use axum::extract::rejection::JsonRejection;
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::Json;
use metalboot_spec::quote;
use metalboot_spec::{DiskSelector, HostSpec, Method, NetworkSpec};
use serde::{Deserialize, Serialize};

/// What a reinstall replaces in the inventory's host for one install.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct InstallOverride {
    /// Discovered network.
    pub network: NetworkSpec,
    /// The confirmed disk.
    pub disk: DiskSelector,
    /// Every confirmed disk of a host on several disks (empty for one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<DiskSelector>,
    /// Subvolumes the reinstall keeps (`reinstall --keep`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<String>,
    /// The trial's deadline (`reinstall --rollback-after`), with `keep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_after: Option<u32>,
}

impl InstallOverride {
    /// The inventory host as this install sees it.
    pub fn apply(&self, host: &HostSpec) -> HostSpec {
        let mut h = host.clone();
        h.network = self.network.clone();
        if self.disks.is_empty() {
            h.disk = Some(self.disk.clone());
            h.disks.clear();
        } else {
            h.disk = None;
            h.disks = self.disks.clone();
        }
        h
    }
}

fn inventory_host(st: &St, name: &str) -> Result<HostSpec, AppError> {
    st.0.inventory
        .load()
        .get(name)
        .cloned()
        .ok_or_else(|| AppError::NotFound(format!("no host {} in the inventory", quote(name))))
}

/// `POST /v1/hosts/{name}/reinstall`
#[tracing::instrument(skip_all, fields(host = %name))]
pub async fn reinstall(
    st: St,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(req): Json<ReinstallRequest>,
) -> Result<Json<ReinstallBoot>, AppError> {
    authorize(&st, &headers)?;
    let spec = inventory_host(&st, &name)?;
    if spec.method != Method::Image {
        return Err(AppError::BadRequest(format!(
            "host {} has method = \"debian-installer\"; a reinstall in place boots metalboot's own installer \
             (method = \"image\")",
            quote(&name)
        )));
    }
    let want = spec.disk_selectors().len();
    let given = if req.disks.is_empty() { 1 } else { req.disks.len() };
    if spec.multi_disk() == req.disks.is_empty() || given != want {
        return Err(AppError::BadRequest(format!(
            "host {} is installed on {want} disk(s) ({}), but the reinstall confirmed {given}: is `metalboot \
             reinstall` older than the server?",
            quote(&name),
            spec.describe_disks()
        )));
    }
    if !spec.macs.is_empty() && !spec.macs.contains(&req.mac) {
        return Err(AppError::BadRequest(format!(
            "the target's NIC {} is not one of host {}'s macs ({}): is this the right machine?",
            req.mac,
            quote(&name),
            spec.macs.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", ")
        )));
    }
    let mut network = req.network.clone();
    network.mac = Some(req.mac);
    let ov = InstallOverride {
        network,
        disk: req.disk.clone(),
        disks: req.disks.clone(),
        keep: req.keep.clone(),
        rollback_after: req.rollback_after,
    };
    metalboot_spec::keep::check_keep(&req.keep, &spec.layout)
        .map_err(|e| AppError::BadRequest(format!("host {}: {e}", quote(&name))))?;
    let mut host = ov.apply(&spec);
    if !host.macs.contains(&req.mac) {
        host.macs.push(req.mac);
    }
    host.validate().map_err(|e| AppError::BadRequest(format!("discovered settings for {}: {e}", quote(&name))))?;
    if !(req.via.len() <= 32 && req.via.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')) {
        return Err(AppError::BadRequest("via: letters, digits and '-' only".into()));
    }
    if let Some(r) = req.rollback_after {
        let range = metalboot_spec::plan::ROLLBACK_AFTER_RANGE;
        if req.keep.is_empty() || !range.contains(&r) {
            return Err(AppError::BadRequest(format!(
                "rollback_after {r}: only with keep, whole seconds from {} to {}",
                range.start(),
                range.end()
            )));
        }
    }
    if let Some(w) = req.server_wait.filter(|w| !metalboot_spec::bootargs::WAIT_SECS.contains(w)) {
        let r = metalboot_spec::bootargs::WAIT_SECS;
        return Err(AppError::BadRequest(format!("server_wait {w}: whole seconds from {} to {}", r.start(), r.end())));
    }
    // an installer that can get no plan would only wait and reboot: refuse
    // before a token is issued or the target is touched
    st.0.assets.check_present(&host.image).map_err(|e| {
        AppError::Internal(
            anyhow::Error::from(e).context(format!("reinstall refused: the host's image {:?}", host.image)),
        )
    })?;
    let bases = Bases::of(&st.0, &headers)?;
    let token = new_token();
    let site = bases.site(&st.0.config);
    let boot = script::reinstall_boot(&site, &host, &req.mac, &token, req.server_wait);
    let json = serde_json::to_string(&ov).map_err(|e| AppError::Internal(e.into()))?;
    let (s, n, th, via) = (st.0.clone(), name.clone(), hash_token(&token), req.via.clone());
    blocking(move || s.store.start_reinstall(&n, &th, &json, &via)).await?;
    tracing::info!(via = %req.via, "reinstall in place: installer issued");
    Ok(Json(boot))
}

/// `POST /v1/hosts/{name}/fail`
pub async fn fail(
    st: St,
    headers: HeaderMap,
    Path(name): Path<String>,
    req: Result<Json<FailRequest>, JsonRejection>,
) -> Result<Json<HostView>, AppError> {
    authorize(&st, &headers)?;
    // an unknown step is the caller's error, named
    let Json(req) = req.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let spec = inventory_host(&st, &name)?;
    for (what, v, max) in [("error", &req.error, 2000)] {
        if v.is_empty() || v.len() > max || v.chars().any(char::is_control) {
            return Err(AppError::BadRequest(format!("{what}: 1 to {max} printable characters")));
        }
    }
    let s = st.0.clone();
    let n = name.clone();
    let out = blocking(move || s.store.fail(&n, req.step.as_str(), &req.error)).await?;
    if out.became_failed {
        st.0.install_ended("failed", &name);
    }
    Ok(Json(super::api::view(&spec, out.record)))
}
