//! What an installed host reports after each snapshot run (btrbk.service):
//! its snapshots and how the run ended. The host signs the report with its
//! SSH host key (ed25519, `ssh-keygen -Y sign`, namespace
//! [`STATUS_NAMESPACE`]); the server checks it against the key it recorded
//! at install, so no secret outlives the install token.

use serde::{Deserialize, Serialize};

/// The SSHSIG namespace of a status report.
pub const STATUS_NAMESPACE: &str = "metalboot-status";
/// The header carrying the signature: the SSHSIG blob, base64, one line.
pub const SIGNATURE_HEADER: &str = "metalboot-signature";
/// Most snapshot names a report may list.
pub const MAX_SNAPSHOTS: usize = 2000;
/// Most error lines a report may carry.
pub const MAX_ERRORS: usize = 10;

/// `POST /v1/hosts/NAME/status`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostStatus {
    /// The inventory name the report is for (as in the URL): a key shared
    /// by two hosts cannot speak for the other.
    pub host: String,
    /// When the host made the report (Unix seconds); each report must be
    /// newer than the last one accepted (no replays).
    pub at: u64,
    /// The snapshots in `@snapshots`, by name (`@home.20261205T2210+0000`).
    #[serde(default)]
    pub snapshots: Vec<String>,
    /// The run that just ended.
    pub run: SnapshotRun,
}

/// How a btrbk run ended, as systemd tells its `ExecStopPost`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRun {
    /// `$SERVICE_RESULT`: `success`, `exit-code`, `timeout`, …
    pub result: String,
    /// `$EXIT_STATUS`: btrbk's exit code (or a signal's name).
    #[serde(default)]
    pub exit_status: String,
    /// btrbk's error lines of the run (a failed send names its target).
    #[serde(default)]
    pub errors: Vec<String>,
}

impl HostStatus {
    /// Refuses what would not fit a terminal line or the database.
    pub fn check(&self) -> Result<(), String> {
        crate::safe::check_host_name(&self.host)?;
        if self.snapshots.len() > MAX_SNAPSHOTS || self.run.errors.len() > MAX_ERRORS {
            return Err(format!("more than {MAX_SNAPSHOTS} snapshots or {MAX_ERRORS} error lines"));
        }
        let word = |s: &str| !s.is_empty() && s.len() <= 255 && s.chars().all(|c| c.is_ascii_graphic());
        if let Some(s) = self.snapshots.iter().find(|s| !word(s)) {
            return Err(format!("snapshot name {} is not one word of at most 255 characters", crate::quote(s)));
        }
        if !word(&self.run.result) || (!self.run.exit_status.is_empty() && !word(&self.run.exit_status)) {
            return Err("run.result and run.exit_status must be single words".into());
        }
        if self.run.errors.iter().any(|e| e.chars().count() > 1024 || e.chars().any(char::is_control)) {
            return Err("an error line is longer than 1024 characters or has control characters".into());
        }
        Ok(())
    }

    /// Error lines as a terminal and the database take them: control
    /// characters replaced, at most 1024 characters each, at most
    /// [`MAX_ERRORS`] (the last ones); a bad line never costs the report.
    pub fn clean_errors(&mut self) {
        let n = self.run.errors.len().saturating_sub(MAX_ERRORS);
        self.run.errors.drain(..n);
        for e in &mut self.run.errors {
            *e = e.chars().map(|c| if c.is_control() { '?' } else { c }).take(1024).collect();
        }
    }

    /// Whether the run succeeded.
    pub fn ok(&self) -> bool {
        self.run.result == "success"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse_and_bad_ones_are_refused() {
        let s: HostStatus = serde_json::from_str(
            r#"{"host":"web1","at":1800000000,"snapshots":["@home.20261205T2210+0000"],"run":{"result":"exit-code","exit_status":"10","errors":["ERROR: Host key verification failed."]}}"#,
        )
        .unwrap();
        s.check().unwrap();
        assert!(!s.ok());
        let mut bad = s.clone();
        bad.snapshots.push("a b".into());
        assert!(bad.check().unwrap_err().contains("snapshot name"));
        let mut bad = s.clone();
        bad.run.errors.push("x\u{1b}[2J".into());
        assert!(bad.check().is_err());
        bad.run.errors.extend((0..20).map(|i| format!("line {i}")));
        bad.clean_errors();
        bad.check().unwrap();
        assert_eq!((bad.run.errors.len(), bad.run.errors[9].as_str()), (10, "line 19"));
        bad.host = "Web 1".into();
        assert!(bad.check().is_err());
        assert!(
            serde_json::from_str::<HostStatus>(r#"{"host":"a","at":1,"run":{"result":"success"},"extra":1}"#).is_err()
        );
    }
}
