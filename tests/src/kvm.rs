//! Whether QEMU gets KVM: `metalboot lab`'s check.

pub use metalboot::lab::kvm::*;
