//! The scenarios' VMs: `metalboot lab`'s (real firmware, disks with serial
//! numbers, a tap in the scenario's namespace).

pub use metalboot::lab::vm::{accel, tail, Bus, Disk, Firmware, Size, Vm};
