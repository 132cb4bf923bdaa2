//! The operator API, behind a bearer token: list and show hosts with their
//! state and timeline, arm (reinstall) and disarm.

use super::{blocking, AppError, St};
use crate::api::{HostDetail, HostView};
use crate::state::{hash_token, HostRecord};
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::Json;
use metalboot_spec::quote;

pub(super) fn authorize(st: &St, headers: &HeaderMap) -> Result<(), AppError> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AppError::Unauthorized)?;
    if crate::state::hashes_equal(&hash_token(given.trim()), &st.0.api_token_hash) {
        Ok(())
    } else {
        Err(AppError::Unauthorized)
    }
}

pub(super) fn view(spec: &metalboot_spec::HostSpec, record: HostRecord) -> HostView {
    HostView {
        record,
        macs: spec.macs.iter().map(|m| m.to_string()).collect(),
        labels: spec.labels.clone(),
        method: spec.method,
        disk: spec.describe_disks(),
        // the server does not know the disk's sector size: the larger need of 512 and 4096
        min_disk_bytes: spec.layout.min_disk_bytes_any_sector(),
        disk_selector: spec.disk.clone(),
        disks: spec.disks.clone(),
        login: spec.ssh_login().to_string(),
    }
}

/// `GET /v1/hosts`
pub async fn list_hosts(st: St, headers: HeaderMap) -> Result<Json<Vec<HostView>>, AppError> {
    authorize(&st, &headers)?;
    let s = st.0.clone();
    let out = blocking(move || {
        s.inventory
            .load()
            .hosts()
            .iter()
            .map(|h| Ok(view(h, s.store.get(&h.name)?)))
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .await?;
    Ok(Json(out))
}

/// `GET /v1/hosts/{name}`
pub async fn show_host(st: St, headers: HeaderMap, Path(name): Path<String>) -> Result<Json<HostDetail>, AppError> {
    authorize(&st, &headers)?;
    let spec =
        st.0.inventory
            .load()
            .get(&name)
            .ok_or_else(|| AppError::NotFound(format!("no host {} in the inventory", quote(&name))))?
            .clone();
    let s = st.0.clone();
    let (rec, timeline) = blocking(move || Ok((s.store.get(&name)?, s.store.timeline(&name)?))).await?;
    Ok(Json(HostDetail { host: view(&spec, rec), timeline }))
}

/// `POST /v1/hosts/{name}/arm`
pub async fn arm_host(st: St, headers: HeaderMap, Path(name): Path<String>) -> Result<Json<HostView>, AppError> {
    authorize(&st, &headers)?;
    let spec =
        st.0.inventory
            .load()
            .get(&name)
            .ok_or_else(|| AppError::NotFound(format!("no host {} in the inventory", quote(&name))))?
            .clone();
    let s = st.0.clone();
    let rec = blocking(move || s.store.arm(&name, "armed by operator")).await?;
    tracing::info!(host = %spec.name, "armed");
    Ok(Json(view(&spec, rec)))
}

/// `POST /v1/hosts/{name}/disarm`
pub async fn disarm_host(st: St, headers: HeaderMap, Path(name): Path<String>) -> Result<Json<HostView>, AppError> {
    authorize(&st, &headers)?;
    let spec =
        st.0.inventory
            .load()
            .get(&name)
            .ok_or_else(|| AppError::NotFound(format!("no host {} in the inventory", quote(&name))))?
            .clone();
    let s = st.0.clone();
    let rec = blocking(move || s.store.disarm(&name, "disarmed by operator")).await?;
    tracing::info!(host = %spec.name, "disarmed");
    Ok(Json(view(&spec, rec)))
}

/// `?host=NAME` for the Ansible inventory.
#[derive(serde::Deserialize)]
pub struct AnsibleQuery {
    host: Option<String>,
}

/// `GET /v1/inventory/ansible` (`--list` shape), or `?host=NAME` (its vars).
pub async fn ansible_inventory(
    st: St,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<AnsibleQuery>,
) -> Result<Json<serde_json::Value>, AppError> {
    authorize(&st, &headers)?;
    let (s, inv) = (st.0.clone(), st.0.inventory.load());
    let hosts = inv.clone();
    let records =
        blocking(move || hosts.hosts().iter().map(|h| s.store.get(&h.name)).collect::<anyhow::Result<Vec<_>>>())
            .await?;
    let pairs: Vec<_> = inv.hosts().iter().zip(records.iter()).collect();
    let doc = crate::handoff::ansible::inventory(&pairs);
    Ok(Json(match q.host {
        None => doc,
        Some(h) => doc["_meta"]["hostvars"].get(&h).cloned().unwrap_or_else(|| serde_json::json!({})),
    }))
}
