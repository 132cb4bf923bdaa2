//! The GRUB side of the trial boot: the entries, `custom.cfg`, and the
//! environment block.

/// A menu entry's kernel and initrd, paths from the top of the filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootEntry {
    /// The kernel's path.
    pub linux: String,
    /// The kernel's arguments.
    pub args: Vec<String>,
    /// The initrd paths.
    pub initrd: Vec<String>,
}

/// The first `menuentry`'s `linux` and `initrd` lines in a grub.cfg (the
/// default entry of `update-grub`'s output and of the installer's own).
pub fn first_entry(cfg: &str) -> Option<BootEntry> {
    let mut lines = cfg.lines().map(str::trim).skip_while(|l| !l.starts_with("menuentry "));
    lines.next()?;
    let (mut linux, mut initrd) = (None, None);
    for l in lines.take_while(|l| *l != "}") {
        let mut words = l.split_whitespace();
        match words.next() {
            Some("linux") => linux = Some((words.next()?.to_string(), words.map(String::from).collect::<Vec<_>>())),
            Some("initrd") => initrd = Some(words.map(String::from).collect::<Vec<_>>()),
            _ => {}
        }
    }
    let (linux, args) = linux?;
    let initrd = initrd.filter(|i| !i.is_empty())?;
    Some(BootEntry { linux, args, initrd })
}

impl BootEntry {
    /// This entry of the root subvolume `from` booted from where it was
    /// moved, `to` (both from the top of the filesystem): its files' paths
    /// and `rootflags=subvol=` follow it.
    pub fn moved(&self, from: &str, to: &str) -> Result<BootEntry, String> {
        let prefix = format!("/{}/", from.trim_start_matches('/'));
        let to = to.trim_start_matches('/');
        let path = |p: &str| match p.strip_prefix(&prefix) {
            Some(rest) => Ok(format!("/{to}/{rest}")),
            None => Err(format!("{p} is not in the root subvolume {from} (a /boot of its own?)")),
        };
        let mut args: Vec<String> = Vec::new();
        let mut subvol_set = false;
        for a in &self.args {
            let Some(flags) = a.strip_prefix("rootflags=") else {
                args.push(a.clone());
                continue;
            };
            let mut kept: Vec<String> = flags
                .split(',')
                .filter(|f| !f.starts_with("subvol=") && !f.starts_with("subvolid="))
                .map(String::from)
                .collect();
            kept.push(format!("subvol=/{to}"));
            subvol_set = true;
            args.push(format!("rootflags={}", kept.join(",")));
        }
        if !subvol_set {
            args.push(format!("rootflags=subvol=/{to}"));
        }
        Ok(BootEntry {
            linux: path(&self.linux)?,
            args,
            initrd: self.initrd.iter().map(|i| path(i)).collect::<Result<_, _>>()?,
        })
    }

    fn menuentry(&self, title: &str, id: &str, root_uuid: &str, extra: &str) -> String {
        let args = self.args.join(" ");
        format!(
            "menuentry '{title}' --id {id} {{\n\tinsmod part_gpt\n\tinsmod btrfs\n\
             \tsearch --no-floppy --fs-uuid --set=root {root_uuid}\n\
             \tlinux\t{} {args}{extra}\n\tinitrd\t{}\n}}\n",
            self.linux,
            self.initrd.join(" ")
        )
    }
}

/// `/boot/grub/custom.cfg` of the new system on trial: both entries, and
/// the trial entry as the default once, when GRUB could record that on the
/// ESP (a GRUB that cannot write there boots the previous system).
pub fn custom_cfg(root_uuid: &str, previous: &str, old: &BootEntry, new: &BootEntry) -> String {
    let mut s = String::from(
        "# written by metalboot-installer: the trial boot of a reinstall that kept data.\n\
         # The new system boots once; every boot after that is the previous system's\n\
         # until the new one phoned home, which removes this file.\n\
         insmod part_gpt\ninsmod fat\n\
         set metalboot_trial=\n\
         search --no-floppy --file --set=metalboot_env /metalboot/grubenv\n\
         if [ -n \"${metalboot_env}\" ]; then\n  load_env --file (${metalboot_env})/metalboot/grubenv metalboot_trial\nfi\n",
    );
    s.push_str(&old.menuentry(&format!("Previous system ({previous})"), "metalboot-previous", root_uuid, ""));
    s.push_str(&new.menuentry("New system, on trial", "metalboot-trial", root_uuid, " panic=10"));
    s.push_str(
        "if [ \"${metalboot_trial}\" = new ]; then\n  set metalboot_trial=old\n\
         \x20 if save_env --file (${metalboot_env})/metalboot/grubenv metalboot_trial; then\n\
         \x20   set default=metalboot-trial\n    set fallback=metalboot-previous\n  else\n    set default=metalboot-previous\n  fi\n\
         else\n  set default=metalboot-previous\nfi\n",
    );
    s
}

/// A GRUB environment block (1024 bytes) holding `vars`.
pub fn env_block(vars: &[(&str, &str)]) -> String {
    let mut s = String::from("# GRUB Environment Block\n");
    for (k, v) in vars {
        s.push_str(&format!("{k}={v}\n"));
    }
    let pad = 1024usize.saturating_sub(s.len());
    s.push_str(&"#".repeat(pad));
    s
}
