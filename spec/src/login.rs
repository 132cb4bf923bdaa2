//! Who logs in to the installed host, and how: an optional admin user made
//! besides root, and the SSH daemon's root-login and password settings.
//!
//! The inventory says what the operator wants ([`AdminSpec`] in
//! `[host.admin]`, [`SshSpec`] in `[host.ssh]`); the server resolves every
//! default once ([`AdminSpec::resolve`], [`SshSpec::resolve`]) and the plan
//! carries the result ([`AdminUser`], [`SshdSettings`]), so our installer,
//! the Debian installer's late command and the Ansible handoff all act on
//! the same values and write the same files.
//!
//! sshd reads `/etc/ssh/sshd_config.d/*.conf` before the rest of
//! `sshd_config` (Debian 12 includes them at its top) and keeps the first
//! value it sees for a keyword, so the drop-in's settings win over the
//! distribution's defaults.

use crate::error::quote;
use crate::{safe, SpecError};
use serde::{Deserialize, Serialize};

/// The admin user's login shell when the inventory names none.
pub const DEFAULT_SHELL: &str = "/bin/bash";

/// Where both install methods write the SSH daemon's settings: sshd keeps
/// the first value it reads for a keyword, and reads its drop-ins in name
/// order, so ours comes first (an image may ship e.g. `50-cloud-init.conf`).
pub const SSHD_DROP_IN: &str = "/etc/ssh/sshd_config.d/00-metalboot.conf";

/// Names the admin user may not take: the users and groups of Debian's base
/// system (base-passwd) and the system users and groups the root filesystem
/// image and Debian's installer create. The user's own group has its name
/// (`useradd -U`), so a group's name is as taken as a user's.
pub const RESERVED_USER_NAMES: &[&str] = &[
    // base-passwd users
    "root",
    "daemon",
    "bin",
    "sys",
    "sync",
    "games",
    "man",
    "lp",
    "mail",
    "news",
    "uucp",
    "proxy",
    "www-data",
    "backup",
    "list",
    "irc",
    "gnats",
    "nobody",
    // base-passwd groups
    "adm",
    "tty",
    "disk",
    "kmem",
    "dialout",
    "fax",
    "voice",
    "cdrom",
    "floppy",
    "tape",
    "sudo",
    "audio",
    "dip",
    "operator",
    "src",
    "shadow",
    "utmp",
    "video",
    "sasl",
    "plugdev",
    "staff",
    "users",
    "nogroup",
    // made by packages of the image and of a Debian-installer install
    "messagebus",
    "sshd",
    "crontab",
    "input",
    "kvm",
    "render",
    "sgx",
    "netdev",
    "tss",
    "polkitd",
];

fn yes() -> bool {
    true
}

/// `[host.admin]`: a user made besides root, for the operator and the config
/// layer, who logs in with SSH keys and (by default) becomes root with sudo
/// without a password. It has no password of its own.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminSpec {
    /// Login name.
    pub name: String,
    /// Keys for the user's `authorized_keys`; default the host's
    /// `ssh_authorized_keys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_authorized_keys: Option<Vec<String>>,
    /// Passwordless sudo (a `/etc/sudoers.d` file and the `sudo` group).
    #[serde(default = "yes")]
    pub sudo: bool,
    /// Login shell; default [`DEFAULT_SHELL`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
}

/// `[host.ssh]`: how the installed host's SSH daemon lets people in.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SshSpec {
    /// May root log in over SSH? Default: no when an admin user is
    /// declared, else yes with a key only (root is then the only login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit_root_login: Option<bool>,
    /// Password logins over SSH; default off. Root logs in with a password
    /// only when this and `permit_root_login` are both set to true.
    #[serde(default)]
    pub password_authentication: bool,
}

/// sshd's `PermitRootLogin` values metalboot writes.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RootLogin {
    /// Root may not log in over SSH.
    No,
    /// Root logs in with a key, never with a password.
    ProhibitPassword,
    /// Root logs in with a key or a password.
    Yes,
}

impl RootLogin {
    /// The value as `sshd_config` spells it.
    pub fn as_sshd(self) -> &'static str {
        match self {
            RootLogin::No => "no",
            RootLogin::ProhibitPassword => "prohibit-password",
            RootLogin::Yes => "yes",
        }
    }
}

/// The admin user as the plan carries it: every default resolved.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminUser {
    /// Login name.
    pub name: String,
    /// Keys for the user's `authorized_keys`; never empty.
    pub ssh_authorized_keys: Vec<String>,
    /// Passwordless sudo.
    pub sudo: bool,
    /// Login shell.
    pub shell: String,
}

/// The SSH daemon's settings as the plan carries them.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SshdSettings {
    /// `PermitRootLogin`.
    pub permit_root_login: RootLogin,
    /// `PasswordAuthentication`.
    pub password_authentication: bool,
}

impl Default for SshdSettings {
    /// Root with a key only, no passwords: what a host without an admin user
    /// and without `[host.ssh]` gets.
    fn default() -> Self {
        SshdSettings { permit_root_login: RootLogin::ProhibitPassword, password_authentication: false }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

impl SshdSettings {
    /// The text of [`SSHD_DROP_IN`]. Keyboard-interactive logins are always
    /// off: through PAM they would ask for a password whatever
    /// `PasswordAuthentication` says.
    pub fn drop_in(&self) -> String {
        format!(
            "# written by metalboot: SSH logins as the inventory's [host.ssh] and [host.admin] say\n\
             PermitRootLogin {}\nPasswordAuthentication {}\nKbdInteractiveAuthentication no\n",
            self.permit_root_login.as_sshd(),
            yes_no(self.password_authentication)
        )
    }
}

impl AdminUser {
    /// Checks the name, the keys and the shell; the installer checks a plan
    /// it received with this too.
    pub fn validate(&self) -> Result<(), SpecError> {
        safe::check_user_name(&self.name).map_err(|m| SpecError::new("name", m))?;
        if RESERVED_USER_NAMES.contains(&self.name.as_str()) || self.name.starts_with("systemd-") {
            return Err(SpecError::new(
                "name",
                format!("{} is a user or group of the base system; choose another name", quote(&self.name)),
            ));
        }
        for (i, k) in self.ssh_authorized_keys.iter().enumerate() {
            safe::check_ssh_public_key(k).map_err(|m| SpecError::new(format!("ssh_authorized_keys[{i}]"), m))?;
        }
        if self.ssh_authorized_keys.is_empty() {
            return Err(SpecError::new(
                "ssh_authorized_keys",
                "no key: the admin user has no password and could not log in; list keys here or in the host's \
                 ssh_authorized_keys",
            ));
        }
        safe::check_abs_path(&self.shell).map_err(|m| SpecError::new("shell", m))?;
        if self.shell == "/" {
            return Err(SpecError::new("shell", "\"/\" is not a shell"));
        }
        Ok(())
    }

    /// The sudoers file that gives the user passwordless sudo. Its name has
    /// no `.` or `~`, which sudo would skip in `/etc/sudoers.d`.
    pub fn sudoers_path(&self) -> String {
        format!("/etc/sudoers.d/metalboot-{}", self.name)
    }

    /// The text of [`AdminUser::sudoers_path`].
    pub fn sudoers(&self) -> String {
        format!(
            "# written by metalboot: the inventory's [host.admin] has sudo = true\n{} ALL=(ALL) NOPASSWD:ALL\n",
            self.name
        )
    }
}

impl AdminSpec {
    /// The user with every default resolved; `host_keys` is the host's
    /// `ssh_authorized_keys`.
    pub fn resolve(&self, host_keys: &[String]) -> AdminUser {
        AdminUser {
            name: self.name.clone(),
            ssh_authorized_keys: self.ssh_authorized_keys.clone().unwrap_or_else(|| host_keys.to_vec()),
            sudo: self.sudo,
            shell: self.shell.clone().unwrap_or_else(|| DEFAULT_SHELL.to_string()),
        }
    }

    /// Checks the user as it will be made; field names are below `admin`.
    pub fn validate(&self, host_keys: &[String]) -> Result<(), SpecError> {
        self.resolve(host_keys).validate()
    }
}

impl SshSpec {
    /// The daemon's settings for a host with or without an admin user.
    pub fn resolve(&self, has_admin: bool) -> SshdSettings {
        let permit_root_login = match self.permit_root_login {
            Some(false) => RootLogin::No,
            Some(true) if self.password_authentication => RootLogin::Yes,
            Some(true) => RootLogin::ProhibitPassword,
            None if has_admin => RootLogin::No,
            None => RootLogin::ProhibitPassword,
        };
        SshdSettings { permit_root_login, password_authentication: self.password_authentication }
    }

    /// Refuses settings that would lock everybody out.
    pub fn validate(&self, has_admin: bool) -> Result<(), SpecError> {
        if self.permit_root_login == Some(false) && !has_admin {
            return Err(SpecError::new(
                "permit_root_login",
                "false, but root is the only user: nobody could log in over SSH; declare [host.admin] or drop this",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example";

    fn admin(toml_text: &str) -> AdminSpec {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn admin_defaults_to_the_host_keys_sudo_and_bash() {
        let a = admin("name = \"ops\"").resolve(&[KEY.to_string()]);
        assert_eq!(
            a,
            AdminUser {
                name: "ops".into(),
                ssh_authorized_keys: vec![KEY.into()],
                sudo: true,
                shell: "/bin/bash".into()
            }
        );
        let a = admin("name = \"ops\"\nssh_authorized_keys = []\nsudo = false\nshell = \"/bin/zsh\"")
            .resolve(&[KEY.to_string()]);
        assert!(a.ssh_authorized_keys.is_empty() && !a.sudo && a.shell == "/bin/zsh", "{a:?}");
    }

    #[test]
    fn admin_validation_names_the_field() {
        let host = [KEY.to_string()];
        let err = |t: &str| admin(t).validate(&host).unwrap_err();
        assert_eq!(err("name = \"Ops\"").field, "name");
        assert_eq!(err("name = \"_ops\"").field, "name");
        for reserved in ["root", "daemon", "bin", "sys", "nobody", "sudo", "sshd", "systemd-network"] {
            let e = err(&format!("name = \"{reserved}\""));
            assert_eq!(e.field, "name", "{reserved}");
            assert!(e.message.contains("base system"), "{reserved}: {}", e.message);
        }
        let e = err("name = \"ops\"\nssh_authorized_keys = []");
        assert_eq!(e.field, "ssh_authorized_keys");
        assert!(e.message.contains("could not log in"), "{}", e.message);
        assert!(admin("name = \"ops\"").validate(&[]).is_err(), "no keys anywhere");
        assert_eq!(err("name = \"ops\"\nssh_authorized_keys = [\"ssh-dss AAAA\"]").field, "ssh_authorized_keys[0]");
        assert_eq!(err("name = \"ops\"\nshell = \"bash\"").field, "shell");
        assert_eq!(err("name = \"ops\"\nshell = \"/bin/sh; reboot\"").field, "shell");
        assert_eq!(err("name = \"ops\"\nshell = \"/\"").field, "shell");
        assert!(admin("name = \"ops\"").validate(&host).is_ok());
        assert!(admin("name = \"deploy-bot\"\nssh_authorized_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq\"]")
            .validate(&[])
            .is_ok());
    }

    #[test]
    fn root_login_follows_the_admin_user_unless_set() {
        let ssh = |t: &str| -> SshSpec { toml::from_str(t).unwrap() };
        let r = |t: &str, admin: bool| ssh(t).resolve(admin).permit_root_login;
        assert_eq!(r("", false), RootLogin::ProhibitPassword, "root is the only login: keys only");
        assert_eq!(r("", true), RootLogin::No, "an admin user turns root login off");
        assert_eq!(r("permit_root_login = true", true), RootLogin::ProhibitPassword);
        assert_eq!(r("permit_root_login = false", true), RootLogin::No);
        assert_eq!(r("password_authentication = true", false), RootLogin::ProhibitPassword);
        assert_eq!(r("permit_root_login = true\npassword_authentication = true", false), RootLogin::Yes);
        assert!(!ssh("").resolve(false).password_authentication);
        assert!(ssh("password_authentication = true").resolve(true).password_authentication);
        assert_eq!(ssh("").resolve(false), SshdSettings::default());
        let e = ssh("permit_root_login = false").validate(false).unwrap_err();
        assert_eq!(e.field, "permit_root_login");
        assert!(e.message.contains("nobody could log in"), "{}", e.message);
        assert!(ssh("permit_root_login = false").validate(true).is_ok());
    }

    #[test]
    fn drop_in_and_sudoers_text() {
        let s = SshdSettings { permit_root_login: RootLogin::No, password_authentication: false };
        let text = s.drop_in();
        assert!(text.starts_with("# written by metalboot"), "{text}");
        assert!(
            text.ends_with("\nPermitRootLogin no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"),
            "{text}"
        );
        let s = SshdSettings { permit_root_login: RootLogin::ProhibitPassword, password_authentication: true };
        assert!(s.drop_in().contains("\nPermitRootLogin prohibit-password\nPasswordAuthentication yes\n"));
        let a = admin("name = \"ops\"").resolve(&[KEY.to_string()]);
        assert_eq!(a.sudoers_path(), "/etc/sudoers.d/metalboot-ops");
        assert!(a.sudoers().ends_with("\nops ALL=(ALL) NOPASSWD:ALL\n"), "{}", a.sudoers());
        assert!(a.sudoers().lines().all(|l| l.starts_with('#') || l == "ops ALL=(ALL) NOPASSWD:ALL"));
    }

    #[test]
    fn plan_values_round_trip_as_sshd_spells_them() {
        let s = SshdSettings { permit_root_login: RootLogin::ProhibitPassword, password_authentication: false };
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(j, r#"{"permit_root_login":"prohibit-password","password_authentication":false}"#);
        assert_eq!(serde_json::from_str::<SshdSettings>(&j).unwrap(), s);
    }
}
