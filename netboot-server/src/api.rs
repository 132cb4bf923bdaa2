//! The operator API's wire types, from `metalboot_spec::api`: both the
//! server and the operator commands use them, so neither side depends on
//! the other.

pub use metalboot_spec::api::*;
