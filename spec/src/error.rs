//! Validation errors that name the field they are about.

use std::fmt;

/// A value in the inventory or a plan that is not acceptable, with the dotted
/// path of the field (`disk.serial`, `ssh_authorized_keys[1]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// Dotted path of the offending field.
    pub field: String,
    /// What is wrong with it, in words an operator can act on.
    pub message: String,
}

impl SpecError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }

    /// The same error, one level deeper: `prefix.field`.
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_string()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for SpecError {}

/// Checks an optional field with `f`, naming `field` in the error.
pub(crate) fn opt(v: &Option<String>, field: &str, f: impl Fn(&str) -> Result<(), String>) -> Result<(), SpecError> {
    match v {
        Some(s) => f(s).map_err(|m| SpecError::new(field, m)),
        None => Ok(()),
    }
}
