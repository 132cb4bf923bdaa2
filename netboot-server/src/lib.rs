//! metalboot's netboot server and operator CLI as a library, so that tests
//! and the thin `main.rs` share one code path.

pub mod api;
pub mod assets;
pub mod cli;
pub mod cmdline;
pub mod config;
pub mod dhcp;
pub mod digest;
pub mod docs;
pub mod files;
pub mod handoff;
pub mod http;
pub mod inventory;
pub mod lab;
pub mod limit;
pub mod live;
pub mod load;
pub mod metrics;
pub mod operator;
pub mod plan;
pub mod ra;
pub mod reload;
pub mod render;
pub mod script;
pub mod sdnotify;
pub mod serve;
pub mod site;
pub mod sshkey;
pub mod sshsig;
pub mod state;
pub mod tftp;
pub mod tls;
