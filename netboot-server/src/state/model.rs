//! Host states, records and timeline entries: the store's rows, defined
//! with the API that shows them (`metalboot_spec::api`).

pub use metalboot_spec::api::{HostRecord, HostState, TimelineEntry};
pub use metalboot_spec::{EventStatus, HostReport, ProgressEvent};
