//! What a "safe" value is. Inventory values end up in iPXE scripts, kernel
//! command lines, debconf preseeds and shell commands, so every free-form field
//! is checked against a narrow character set at load time. Renderers check
//! again (defence in depth), but nothing hostile should get past this module.

use crate::error::quote;
/// A host name: one DNS label (RFC 1123), lower-case, 1..=63 characters.
pub fn check_host_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 63 {
        return Err(format!("{} must be 1 to 63 characters", quote(s)));
    }
    let ok = s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok || s.starts_with('-') || s.ends_with('-') {
        return Err(format!("{} is not a valid host name (lower-case letters, digits and inner '-' only)", quote(s)));
    }
    Ok(())
}

/// A label or group name: starts with a letter, then letters, digits, `_`, `-`.
/// Ansible group names may not contain `-`, so we convert on output, not here.
pub fn check_label(s: &str) -> Result<(), String> {
    let mut it = s.bytes();
    let first_ok = it.next().is_some_and(|b| b.is_ascii_alphabetic());
    if !first_ok || s.len() > 63 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(format!(
            "{} is not a valid label (a letter, then letters, digits, '_' or '-', at most 63)",
            quote(s)
        ));
    }
    Ok(())
}

/// A word with no space, quote, shell or script metacharacter: letters, digits
/// and `._:+-@/,=`. Used for serials, models (after trimming), WWNs, kernel
/// arguments and similar single tokens.
pub fn check_word(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() || s.len() > max {
        return Err(format!("{} must be 1 to {max} characters", quote(s)));
    }
    if let Some(c) = s.chars().find(|c| !is_word_char(*c)) {
        return Err(format!("{} contains {c:?}; only letters, digits and . _ : + - @ / , = are allowed", quote(s)));
    }
    if s.contains("..") {
        return Err(format!("{} contains '..'", quote(s)));
    }
    Ok(())
}

/// A login name for a user metalboot creates: a lower-case letter, then
/// lower-case letters, digits, `_` or `-`, at most 32 characters (the
/// portable set of POSIX and `useradd`'s default `NAME_REGEX`; Debian's
/// installer refuses a leading `_`, which Debian keeps for system users).
pub fn check_user_name(s: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok {
        return Err(format!(
            "{} is not a user name (a lower-case letter, then a-z 0-9 _ -, at most 32 characters)",
            quote(s)
        ));
    }
    Ok(())
}

/// A Debian package name (Policy 5.6.1): lower-case letters, digits, `+`,
/// `-`, `.`; at least two characters, starting with a letter or digit.
pub fn check_package_name(s: &str) -> Result<(), String> {
    let ok = (2..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if !ok {
        return Err(format!(
            "{} is not a Debian package name (2 to 64 of a-z 0-9 + - ., starting with a letter or digit)",
            quote(s)
        ));
    }
    Ok(())
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._:+-@/,=".contains(c)
}

/// A disk model or serial as the kernel reports it: may hold inner spaces
/// (`QEMU HARDDISK`), otherwise like [`check_word`].
pub fn check_spaced_word(s: &str, max: usize) -> Result<(), String> {
    if s.trim() != s || s.contains("  ") {
        return Err(format!("{} has leading, trailing or double spaces", quote(s)));
    }
    for part in s.split(' ') {
        check_word(part, max).map_err(|_| {
            format!("{} may contain only letters, digits, single spaces and . _ : + - @ / , =", quote(s))
        })?;
    }
    if s.len() > max {
        return Err(format!("{} is longer than {max} characters", quote(s)));
    }
    Ok(())
}

/// An absolute path made of safe components: no `..`, no `.`, no empty
/// component, characters from [`check_word`] minus `,` and `=`.
pub fn check_abs_path(s: &str) -> Result<(), String> {
    if !s.starts_with('/') || s.len() > 255 {
        return Err(format!("{} is not an absolute path", quote(s)));
    }
    if s == "/" {
        return Ok(());
    }
    for comp in s[1..].split('/') {
        if comp.is_empty() || comp == "." || comp == ".." {
            return Err(format!("{} has an empty, '.' or '..' component", quote(s)));
        }
        if !comp.chars().all(|c| c.is_ascii_alphanumeric() || "._+-@:".contains(c)) {
            return Err(format!("{} has characters outside letters, digits and . _ + - @ :", quote(s)));
        }
    }
    Ok(())
}

/// An OpenSSH public key line: `TYPE BASE64 [COMMENT]`, one line, no options
/// prefix, a known key type, and a comment of plain printable characters.
pub fn check_ssh_public_key(s: &str) -> Result<(), String> {
    const TYPES: &[&str] = &[
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    ];
    if s.len() > 16 * 1024 {
        return Err("key is longer than 16 KiB".into());
    }
    let mut parts = s.splitn(3, ' ');
    let kind = parts.next().unwrap_or("");
    let blob = parts.next().unwrap_or("");
    let comment = parts.next().unwrap_or("");
    if !TYPES.contains(&kind) {
        return Err(format!("key type {} is not one of {}", quote(kind), TYPES.join(", ")));
    }
    if blob.len() < 16 || !blob.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=') {
        return Err("key data is not base64".into());
    }
    if let Some(c) = comment.chars().find(|c| !(c.is_ascii_alphanumeric() || " ._:+-@/,=".contains(*c))) {
        return Err(format!(
            "key comment contains {c:?}; only letters, digits, spaces and . _ : + - @ / , = are allowed"
        ));
    }
    if comment.contains("..") {
        return Err("key comment contains '..'".into());
    }
    Ok(())
}

/// A crypt(3) password hash (`$6$salt$hash`, `$y$…`): only the crypt alphabet.
pub fn check_password_hash(s: &str) -> Result<(), String> {
    let known = ["$1$", "$5$", "$6$", "$y$", "$2b$", "$2y$", "$7$"];
    if !known.iter().any(|p| s.starts_with(p)) {
        return Err("not a crypt(3) hash (want $6$… or $y$…, from `mkpasswd`)".into());
    }
    if s.len() > 512 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"$./=".contains(&b)) {
        return Err("hash contains characters outside the crypt alphabet".into());
    }
    Ok(())
}

/// A kernel command-line argument we allow from the inventory: `key` or
/// `key=value`, from the [`check_word`] set, and not one of ours.
pub fn check_kernel_arg(s: &str) -> Result<(), String> {
    check_word(s, 255)?;
    if s.starts_with("metalboot.") || s.starts_with("initrd=") {
        return Err(format!("{} would override an argument metalboot sets itself", quote(s)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert!(check_host_name("web-01").is_ok());
        for bad in ["", "-a", "a-", "Web", "a_b", "a.b", "a b", "a\nb", &"a".repeat(64)] {
            assert!(check_host_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ssh_keys() {
        let good = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";
        assert!(check_ssh_public_key(good).is_ok());
        assert!(check_ssh_public_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq").is_ok());
        for bad in [
            "command=\"rm -rf /\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq\nssh-rsa AAAAB3NzaC1yc2EAAAA",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq x'; reboot #",
            "ssh-ed25519 AAAA$(reboot)AAAAAAAAAAAAA",
            "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
        ] {
            assert!(check_ssh_public_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_names() {
        for good in ["ops", "a", "deploy-bot", "x_1", &"a".repeat(32)] {
            assert!(check_user_name(good).is_ok(), "{good:?}");
        }
        for bad in ["", "Ops", "1ops", "_ops", "-ops", "o.ps", "o ps", "ops\n", "ops$", "\u{f6}ps", &"a".repeat(33)] {
            assert!(check_user_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn words_paths_and_hashes() {
        assert!(check_spaced_word("QEMU HARDDISK", 64).is_ok());
        assert!(check_spaced_word("QEMU  HARDDISK", 64).is_err());
        assert!(check_word("console=ttyS0,115200", 255).is_ok());
        assert!(check_word("a;b", 255).is_err());
        assert!(check_abs_path("/dev/disk/by-id/ata-X").is_ok());
        assert!(check_abs_path("/dev/../etc/passwd").is_err());
        assert!(check_password_hash("$6$abc$def/ghi.").is_ok());
        assert!(check_password_hash("$6$abc$de'f").is_err());
        assert!(check_kernel_arg("metalboot.token=x").is_err());
    }
}
