//! `hosts show`'s lines for an installed host's last status report: its
//! snapshots by subvolume (how many, the newest) and how the last snapshot
//! run (and its sends) ended.

use metalboot_spec::status::HostStatus;
use std::collections::BTreeMap;

/// The report as lines, without the host's name.
pub fn lines(st: &HostStatus) -> Vec<String> {
    let clean = |s: &str| s.chars().map(|c| if c.is_control() { '?' } else { c }).collect::<String>();
    let at = crate::state::rfc3339((st.at.min(i64::MAX as u64 / 1000) as i64) * 1000);
    let mut by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in &st.snapshots {
        let sub = s.rsplit_once('.').map_or(s.as_str(), |(n, _)| n);
        by.entry(sub).or_default().push(s);
    }
    let mut out = Vec::new();
    if by.is_empty() {
        out.push("snapshots: none".to_string());
    }
    for (sub, mut names) in by {
        names.sort();
        let newest = names.last().copied().unwrap_or("");
        out.push(format!("snapshots: {} {} — newest {}", names.len(), clean(sub), clean(newest)));
    }
    let result = if st.ok() {
        "ok".to_string()
    } else {
        format!("FAILED ({}, exit status {})", clean(&st.run.result), clean(&st.run.exit_status))
    };
    out.push(format!("last run: {result} at {at}"));
    out.extend(st.run.errors.iter().map(|e| format!("  {}", clean(e))));
    out
}

/// Prints [`lines`].
pub fn print(st: &HostStatus) {
    for l in lines(st) {
        println!("{l}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_counted_by_subvolume_and_a_failed_run_shows_why() {
        let st: HostStatus = serde_json::from_value(serde_json::json!({
            "host": "web1",
            "at": 1_800_000_000u64,
            "snapshots": ["@home.20261205T2211+0000", "@.20261205T2210+0000", "@home.20261205T2210+0000"],
            "run": {"result": "exit-code", "exit_status": "10", "errors": ["ERROR: Host key verification failed."]},
        }))
        .unwrap();
        assert_eq!(
            lines(&st),
            [
                "snapshots: 1 @ — newest @.20261205T2210+0000",
                "snapshots: 2 @home — newest @home.20261205T2211+0000",
                "last run: FAILED (exit-code, exit status 10) at 2027-01-15T08:00:00.000Z",
                "  ERROR: Host key verification failed.",
            ]
        );
    }
}
