//! The QEMU end-to-end harness: a network namespace with a bridge and a tap,
//! `metalboot serve` inside it (full DHCP, TFTP, HTTP), a QEMU VM with real
//! firmware booting from the network, and helpers that wait on positive
//! events (server state, serial console markers) with deadlines. Everything
//! it starts is stopped by PID, and its namespace removed, even on failure.

pub mod backup;
pub mod boot_bench;
pub mod browser;
pub mod dhcp_client;
pub mod dhcp_setup;
pub mod disks;
pub mod harness;
pub mod image_builder;
pub mod kvm;
pub mod lab;
pub mod metrics;
pub mod mitm;
pub mod netns;
pub mod old_system;
pub mod oplog;
pub mod package;
pub mod perfdhcp;
pub mod postgres;
pub mod raid;
pub mod refusal;
pub mod reinstall;
pub mod reinstall_grub;
pub mod relay;
pub mod rescue;
pub mod rollback;
pub mod scenarios;
pub mod snapshots;
pub mod ssh;
pub mod status_page;
pub mod timing;
pub mod two_servers;
pub mod vm;
