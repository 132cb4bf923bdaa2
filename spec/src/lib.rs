//! The shared contract of metalboot: the host inventory the operator writes and
//! the install plan the installer consumes, as serde types with validation,
//! and the wire between server and installer: the kernel command line
//! ([`BootArgs`]) and the progress events and reports ([`progress`]).
//!
//! No I/O lives here. The server loads and validates the inventory, renders
//! plans from it; the installer deserialises a plan and validates it again, so
//! both sides agree on what a safe value is.

pub mod api;
pub mod bootargs;
pub mod disk;
pub mod error;
pub mod host;
pub mod keep;
pub mod log;
pub mod login;
pub mod mac;
pub mod net;
pub mod pin;
pub mod plan;
pub mod progress;
pub mod retention;
pub mod safe;
pub mod selector;
pub mod send;
pub mod size;
pub mod snapshots;
pub mod status;

pub use bootargs::BootArgs;
pub use disk::{DiskIdentity, DiskSelector, Layout, Raid, Subvolume, MIN_ROOT_BYTES, SECTOR_SIZES};
pub use error::{one_line, parse_error, quote, SpecError};
pub use host::{HandoffSpec, HostSpec, Method, NetMode, NetworkSpec, OnFailure};
pub use login::{AdminSpec, AdminUser, RootLogin, SshSpec, SshdSettings};
pub use mac::MacAddr;
pub use net::IpCidr;
pub use pin::{Pin, PinSet};
pub use plan::{Endpoints, ImageRef, InstallPlan, PLAN_VERSION};
pub use progress::{EventStatus, HostReport, ProgressEvent, Step, STEPS_BEFORE_FIRST_WRITE};
pub use send::SendTarget;
pub use size::ByteSize;
pub use snapshots::SnapshotSpec;
