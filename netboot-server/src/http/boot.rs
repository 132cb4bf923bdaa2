//! `GET /boot.ipxe?mac=…&platform=…`: the script iPXE chains to. The
//! install-once guard lives in `script::decide`; here we look the machine up,
//! issue a token for an armed host and render. The request carries no
//! credential, so it never revokes a running installer's token: a boot
//! mid-install gets a pending token, and the store bounds how often
//! (`state::MAX_TOKEN_REISSUES`).

use super::{base_url, blocking, AppError, Bases, St};
use crate::script::{self, BootDecision, Platform};
use crate::state::{hash_token, new_token, BootStart};
use axum::extract::Query;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use metalboot_spec::MacAddr;
use serde::Deserialize;

/// Query parameters iPXE fills in.
#[derive(Deserialize, Debug)]
pub struct BootQuery {
    mac: Option<String>,
    platform: Option<String>,
    buildarch: Option<String>,
    uuid: Option<String>,
}

/// Serves the boot script for the machine with `mac`.
#[tracing::instrument(skip_all, fields(mac = q.mac.as_deref().unwrap_or("-"), host))]
pub async fn boot_script(
    st: St,
    headers: HeaderMap,
    Query(q): Query<BootQuery>,
) -> Result<impl IntoResponse, AppError> {
    let state = st.0;
    let platform = Platform::from_ipxe(q.platform.as_deref()).map_err(AppError::BadRequest)?;
    let Some(mac) = q.mac.as_deref() else {
        // iPXE arrived here from DHCP's boot file name: have it come back
        // with the facts we need.
        let base = base_url(&state, &headers)?;
        let body = format!(
            "#!ipxe\nchain {base}/boot.ipxe?mac=${{netX/mac}}&platform=${{platform}}&buildarch=${{buildarch}}&uuid=${{uuid}}\n"
        );
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], body));
    };
    let mac: MacAddr = mac.parse().map_err(AppError::BadRequest)?;
    let inventory = state.inventory.load();
    let host = inventory.by_mac(&mac);
    if let Some(h) = host {
        tracing::Span::current().record("host", h.name.as_str());
    }
    let st2 = state.clone();
    let name = host.map(|h| h.name.clone());
    let rec_state = blocking(move || match name {
        Some(n) => Ok(st2.store.get(&n)?.state),
        None => Ok(crate::state::HostState::Absent),
    })
    .await?;
    let bases = Bases::of(&state, &headers)?;
    let site = bases.site(&state.config);
    let body = match script::decide(host, rec_state) {
        BootDecision::Local(reason) => {
            tracing::info!(reason, "serving local boot");
            if let Some(h) = host {
                let (st3, n, msg) =
                    (state.clone(), h.name.clone(), format!("local boot served ({platform:?}): {reason}"));
                blocking(move || st3.store.note_boot(&n, &msg)).await?;
            }
            script::local_script(&state.renderer, platform, reason)?
        }
        BootDecision::Install(h) => {
            let token = new_token();
            let body = script::install_script(&state.renderer, &site, h, &mac, platform, &token)?;
            let detail = format!(
                "{platform:?} {} uuid {}",
                q.buildarch.as_deref().unwrap_or("?"),
                q.uuid.as_deref().unwrap_or("?")
            )
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || " -?:".contains(*c))
            .take(120)
            .collect::<String>();
            let (st3, n, method) = (state.clone(), h.name.clone(), method_name(h));
            let started = blocking(move || st3.store.start_boot(&n, &hash_token(&token), method, &detail)).await?;
            match started {
                BootStart::Installer => {
                    tracing::info!(method, "serving installer");
                    body
                }
                BootStart::NotWanted => script::local_script(&state.renderer, platform, "host is not armed")?,
                BootStart::TooManyBoots(out) => {
                    tracing::warn!("too many installer boots for one install: host failed");
                    if out.became_failed {
                        state.install_ended("failed", &h.name);
                    }
                    script::local_script(&state.renderer, platform, "too many boots, re-arm the host to retry")?
                }
            }
        }
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], body))
}

fn method_name(h: &metalboot_spec::HostSpec) -> &'static str {
    match h.method {
        metalboot_spec::Method::Image => "image",
        metalboot_spec::Method::DebianInstaller => "debian-installer",
    }
}
