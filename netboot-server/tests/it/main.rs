//! The integration tests of the netboot server, in one test binary: the HTTP
//! router through `oneshot`, DHCP decisions on captured packets, TFTP over
//! loopback, the `metalboot` binary on temporary data directories. Each module
//! was once a test binary of its own; one binary links the crate once.

// a test may unwrap: a panic is its failure report
#![allow(clippy::unwrap_used)]

mod common;
mod dhcp_captures;
mod di_finish;
mod di_select_disk;
mod di_subvolumes;
mod discover;
mod docs;
mod golden;
mod handoff;
mod host_status;
mod hostile_values;
mod http_assets;
mod http_boot;
mod http_limits;
mod http_reinstall;
mod http_rollback;
mod http_tokens;
mod https;
mod https_client;
mod installer_log;
mod inventory_validation;
mod kill9;
mod metrics;
mod oneshot;
mod postgres_state;
mod preseed_debconf;
mod reload;
mod render_failure;
mod status_page;
mod tftp_loopback;
