//! One disk a plan writes: the disk's facts and its partitions.

use crate::layout::{PartKind, PartSpec};
use crate::probe::{self, DiskFacts};
use serde::Serialize;

/// One disk to write and its partitions.
#[derive(Serialize, Debug, Clone)]
pub struct DiskPlan {
    /// The disk, with its logical sector size.
    pub disk: DiskFacts,
    /// Partitions to create, in its sectors.
    pub partitions: Vec<PartSpec>,
}

impl DiskPlan {
    /// The device node of partition `kind` once the kernel has it.
    pub fn partition_path(&self, kind: PartKind) -> String {
        let n = self.partitions.iter().find(|p| p.kind == kind).map_or(0, |p| p.number);
        format!("/dev/{}", probe::partition_name(&self.disk.name, n))
    }
}
