//! What is kept of a host's snapshots, here and on a send target, as
//! btrbk's `*_preserve_min` and `*_preserve` count it; and the `N` + unit
//! spans the inventory writes intervals in.

use crate::error::{quote, SpecError};
use serde::{Deserialize, Serialize};

/// Most periods of one kind kept.
const MAX_KEEP: u32 = 10_000;

/// Retention, as btrbk counts it: the newest snapshot always, every
/// snapshot younger than `all_within`, then the first of each of the last
/// `hourly` hours, `daily` days, and so on.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Keep every snapshot this young (`"2d"`, `"12h"`); none: only the
    /// newest beyond the counts below.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all_within: Option<String>,
    /// Hourly snapshots kept.
    pub hourly: u32,
    /// Daily snapshots kept.
    pub daily: u32,
    /// Weekly snapshots kept.
    pub weekly: u32,
    /// Monthly snapshots kept.
    pub monthly: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { all_within: None, hourly: 24, daily: 7, weekly: 4, monthly: 6 }
    }
}

impl Retention {
    /// Checks the values; `field` names the table (`keep`, `send[0].keep`).
    pub fn validate(&self, field: &str) -> Result<(), SpecError> {
        if let Some(w) = &self.all_within {
            span(w, &["h", "d", "w", "m", "y"]).map_err(|m| SpecError::new(format!("{field}.all_within"), m))?;
        }
        for (n, name) in
            [(self.hourly, "hourly"), (self.daily, "daily"), (self.weekly, "weekly"), (self.monthly, "monthly")]
        {
            if n > MAX_KEEP {
                return Err(SpecError::new(format!("{field}.{name}"), format!("{n} is more than {MAX_KEEP}")));
            }
        }
        Ok(())
    }

    /// btrbk's `*_preserve` value: `6h 7d`, or `no` for none.
    pub fn preserve(&self) -> String {
        let p: Vec<String> = [(self.hourly, "h"), (self.daily, "d"), (self.weekly, "w"), (self.monthly, "m")]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, u)| format!("{n}{u}"))
            .collect();
        if p.is_empty() {
            "no".to_string()
        } else {
            p.join(" ")
        }
    }
}

/// Parses `N` + `unit` into (N, unit) with the units allowed.
pub(crate) fn span<'a>(s: &'a str, units: &[&'a str]) -> Result<(u64, &'a str), String> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (n, unit) = s.split_at(digits);
    let bad = || format!("{} is not a number followed by one of {}", quote(s), units.join(", "));
    let n: u64 = n.parse().map_err(|_| bad())?;
    let unit = units.iter().find(|u| **u == unit).ok_or_else(bad)?;
    if n == 0 || n > 100_000 {
        return Err(format!("{} is out of range (1 to 100000)", quote(s)));
    }
    Ok((n, unit))
}
