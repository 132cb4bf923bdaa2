//! `metalboot lab` as an operator runs it: two inventory hosts (one BIOS,
//! one UEFI) brought up from an inventory file with `--snapshot`, a
//! playbook run against them with host keys checked, and `lab down`
//! leaving nothing behind; then a second `up` from the snapshot: the same
//! hosts and host keys, none of the first lab's changes, in a boot's time.
//!
//! The first `up` keeps its hosts by powering them off and starting them
//! again (BIOS: network boot first) on overlays: the server, its state
//! restored, sends the installed BIOS host to its disk (install once).

use crate::harness::{assets, metalboot_bin, require_assets, workspace};
use anyhow::{bail, ensure, Context, Result};
use metalboot::lab::state::Proc;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

/// The operator's side: a config, an inventory and a playbook in their own
/// directory; the lab in a directory of its own beside them.
struct Operator {
    dir: PathBuf,
    lab: PathBuf,
    started: Instant,
    phases: Vec<String>,
}

impl Operator {
    fn phase(&mut self, what: &str) {
        let line = format!("{:8.1}s  {what}", self.started.elapsed().as_secs_f64());
        println!("[lab] {line}");
        self.phases.push(line);
    }

    /// `metalboot --config metalboot.toml lab --dir LAB ARGS…`.
    fn lab(&self, args: &[&str]) -> Result<Output> {
        Command::new(metalboot_bin())
            .current_dir(&self.dir)
            .args(["--config", "metalboot.toml", "lab", "--dir"])
            .arg(&self.lab)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running metalboot lab {}", args.join(" ")))
    }

    /// As [`Operator::lab`], failing unless it succeeds; its standard output.
    fn lab_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.lab(args)?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        ensure!(
            out.status.success(),
            "metalboot lab {} failed ({}):\n{text}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(text)
    }
}

/// The playbook: a file written on every host, read back and compared.
const PLAYBOOK: &str = r#"- hosts: all
  gather_facts: false
  become: true
  tasks:
    - name: write a file
      ansible.builtin.copy:
        content: "written by the playbook to {{ inventory_hostname }}\n"
        dest: /root/lab-check
        mode: "0600"
    - name: read it back
      ansible.builtin.slurp:
        src: /root/lab-check
      register: back
    - name: compare
      ansible.builtin.assert:
        that:
          - (back.content | b64decode) == "written by the playbook to " ~ inventory_hostname ~ "\n"
"#;

/// The inventory: `lab-bios` logs in as root, `lab-uefi` as an admin user
/// with sudo; both get the cloud image, a disk selected by serial.
fn inventory(key: &str) -> String {
    format!(
        "[[host]]\nname = \"lab-bios\"\nmacs = [\"52:54:00:1a:b0:01\"]\nlabels = [\"web\"]\n\
         disk = {{ serial = \"LAB-BIOS-DISK\" }}\nimage = \"rootfs-cloud.tar.zst\"\nssh_authorized_keys = [\"{key}\"]\n\n\
         [[host]]\nname = \"lab-uefi\"\nmacs = [\"52:54:00:1a:b0:02\"]\nlabels = [\"web\"]\n\
         disk = {{ serial = \"LAB-UEFI-DISK\", min_size = \"6G\" }}\nimage = \"rootfs-cloud.tar.zst\"\n\
         admin = {{ name = \"ops\" }}\nssh_authorized_keys = [\"{key}\"]\n"
    )
}

/// Process ids whose command line mentions `text`.
fn processes_mentioning(text: &str) -> Vec<u32> {
    metalboot::lab::state::processes_whose_cmdline(|c| c.replace('\0', " ").contains(text))
}

/// Up, status, run (the playbook, and ssh from outside through the
/// ProxyCommand), a second `up` refused, down, nothing left.
pub fn lab_up_run_down() -> Result<()> {
    require_assets()?;
    let dir = workspace().join("target/e2e/lab");
    let lab = dir.join("lab");
    if lab.join("lab.json").exists() {
        // a crashed earlier run's lab
        let _ = Command::new(metalboot_bin()).args(["lab", "--dir"]).arg(&lab).arg("down").status();
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut op = Operator { dir: dir.clone(), lab: lab.clone(), started: Instant::now(), phases: vec![] };
    let key = dir.join("operator_key");
    let st = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status()?;
    ensure!(st.success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(key.with_extension("pub"))?.trim().to_string();
    std::fs::write(
        dir.join("metalboot.toml"),
        format!("[server]\ninventory = \"hosts.toml\"\n\n[assets]\ndir = \"{}\"\n", assets().display()),
    )?;
    std::fs::write(dir.join("hosts.toml"), inventory(&public))?;
    std::fs::write(dir.join("playbook.yml"), PLAYBOOK)?;
    let cpus = std::env::var("METALBOOT_VM_CPUS").unwrap_or_else(|_| "2".into());

    let cache = dir.join("cache");
    let cache = cache.to_str().context("cache path")?;
    let up_args = ["up", "--firmware", "lab-uefi=uefi", "--cpus", &cpus, "--snapshot", "--cache", cache];

    let text = up(&op, &up_args)?;
    let result = after_up(&mut op, &text);
    let known = std::fs::read_to_string(lab.join("known_hosts")).unwrap_or_default();
    let pids = lab_pids(&lab);
    let down = op.lab_ok(&["down"]);
    result?;
    let down = down?;
    op.phase(down.trim());
    check_nothing_left(&mut op, &lab, &pids)?;

    let text = up(&op, &up_args)?;
    let result = from_snapshot(&mut op, &text, &known);
    let pids = lab_pids(&lab);
    let down = op.lab_ok(&["down"]);
    result?;
    op.phase(down?.trim());
    check_nothing_left(&mut op, &lab, &pids)?;
    std::fs::write(dir.join("timeline.txt"), op.phases.join("\n") + "\n")?;
    Ok(())
}

/// `lab up ARGS…`, its output shown; on failure the lab is taken down.
fn up(op: &Operator, args: &[&str]) -> Result<String> {
    let up = op.lab(args)?;
    let text = String::from_utf8_lossy(&up.stdout).into_owned();
    print!("{}", text.lines().map(|l| format!("[lab] {l}\n")).collect::<String>());
    if !up.status.success() {
        let err = String::from_utf8_lossy(&up.stderr).into_owned();
        let _ = op.lab(&["down"]);
        bail!("metalboot lab up failed ({}):\n{err}", up.status);
    }
    Ok(text)
}

/// The second `up`: from the snapshot, the hosts as installed (same host
/// keys, known_hosts as before), without what the playbook wrote.
fn from_snapshot(op: &mut Operator, up: &str, known: &str) -> Result<()> {
    ensure!(up.contains("the hosts start from it"), "the second lab up did not use the snapshot:\n{up}");
    let now = std::fs::read_to_string(op.lab.join("known_hosts"))?;
    ensure!(!known.is_empty() && now == known, "other host keys from the snapshot:\n{known}\n---\n{now}");
    op.phase("lab up --snapshot again: started from the snapshot, the same host keys");
    let check = "test ! -e /root/lab-check && echo fresh";
    let out = op.lab_ok(&["run", "--", "ansible", "all", "-b", "-m", "ansible.builtin.shell", "-a", check])?;
    ensure!(out.matches("fresh").count() == 2, "the first lab's file is on a host:\n{out}");
    op.phase("ansible on both hosts: the first lab's file is not there (fresh overlays)");
    Ok(())
}

/// Every process the state file records (id and start time).
fn lab_pids(lab: &Path) -> Vec<Proc> {
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab.join("lab.json")).unwrap_or_default()).unwrap_or_default();
    let proc = |v: &serde_json::Value| serde_json::from_value::<Proc>(v.clone()).ok().filter(|p| p.pid != 0);
    let mut v: Vec<Proc> = st["hosts"].as_array().into_iter().flatten().filter_map(|h| proc(&h["vm"])).collect();
    v.extend(proc(&st["server"]));
    v
}

fn after_up(op: &mut Operator, up: &str) -> Result<()> {
    for name in ["lab-bios", "lab-uefi"] {
        ensure!(up.contains(&format!("{name}: installed")), "lab up did not report {name} installed:\n{up}");
    }
    ensure!(up.contains("powered off and kept: snapshot"), "lab up --snapshot kept no snapshot:\n{up}");
    op.phase("lab up --snapshot: both hosts installed, powered off, kept and started again; reachable over SSH");
    // the BIOS host boots from the network first: on the overlays, the
    // restarted server (its log begins there) sent it to its disk
    let log = std::fs::read_to_string(op.lab.join("server.log"))?;
    let local = log.lines().filter(|l| l.contains("host=\"lab-bios\"") && l.contains("serving local boot")).count();
    ensure!(local >= 1, "the server never sent lab-bios to its disk after the restart:\n{log}");
    op.phase(&format!("install once: lab-bios network-booted and was sent to its disk ({local} time(s))"));
    let status = op.lab_ok(&["status"])?;
    for (name, fw) in [("lab-bios", "bios"), ("lab-uefi", "uefi")] {
        ensure!(
            status
                .lines()
                .any(|l| l.starts_with(name) && l.contains(fw) && l.contains("installed") && l.contains("running")),
            "lab status lacks {name} ({fw}, installed, running):\n{status}"
        );
    }
    ensure!(status.contains("disks: overlays on snapshot"), "lab status does not name the snapshot:\n{status}");
    let again = op.lab(&["up"])?;
    let err = String::from_utf8_lossy(&again.stderr);
    ensure!(!again.status.success() && err.contains("already up"), "a second lab up was not refused: {err}");
    op.phase("lab status: both installed; a second lab up refused");

    let play = op.lab(&["run", "--", "ansible-playbook", "playbook.yml"])?;
    let out = String::from_utf8_lossy(&play.stdout).into_owned();
    ensure!(play.status.success(), "ansible-playbook failed:\n{out}{}", String::from_utf8_lossy(&play.stderr));
    for name in ["lab-bios", "lab-uefi"] {
        ensure!(
            out.lines().any(|l| l.starts_with(name) && l.contains("ok=3") && l.contains("failed=0")),
            "no clean recap for {name}:\n{out}"
        );
    }
    op.phase("lab run -- ansible-playbook: a file written and read back on both hosts");

    // host keys are checked: with an empty known_hosts the same login fails
    let strict = op.lab(&[
        "run",
        "--",
        "sh",
        "-c",
        "ssh -F \"$METALBOOT_LAB_SSH_CONFIG\" -o UserKnownHostsFile=/dev/null lab-bios true",
    ])?;
    let err = String::from_utf8_lossy(&strict.stderr);
    ensure!(!strict.status.success() && err.contains("Host key verification failed"), "not refused: {err}");
    // and from outside the lab's network, through the ProxyCommand
    let cfg = op.lab.join("ssh_config");
    for (name, cat) in [("lab-bios", "cat /root/lab-check"), ("lab-uefi", "sudo -n cat /root/lab-check")] {
        let out = Command::new("ssh").arg("-F").arg(&cfg).args([name, cat]).stdin(Stdio::null()).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success() && text == format!("written by the playbook to {name}\n"),
            "ssh {name} from outside: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    op.phase("host keys checked (an empty known_hosts is refused); ssh -F ssh_config from outside reads both files");
    let console = op.lab_ok(&["console", "lab-uefi"])?;
    ensure!(console.contains("lab-uefi login:"), "lab console lab-uefi shows no login prompt");
    op.phase("lab console: the UEFI host's serial console");
    Ok(())
}

/// No namespace of the lab, none of its processes, no tap, no lab files.
fn check_nothing_left(op: &mut Operator, lab: &Path, pids: &[Proc]) -> Result<()> {
    let list = Command::new("ip").args(["netns", "list"]).output()?;
    let list = String::from_utf8_lossy(&list.stdout);
    ensure!(!list.contains("mblab-"), "a lab namespace is left: {list}");
    for p in pids {
        ensure!(p.ended(), "process {} of the lab still runs", p.pid);
    }
    let left = processes_mentioning(&lab.display().to_string());
    ensure!(left.is_empty(), "processes mentioning {} still run: {left:?}", lab.display());
    let links = Command::new("ip").args(["-o", "link", "show", "type", "tun"]).output()?;
    let links = String::from_utf8_lossy(&links.stdout);
    ensure!(!links.contains("tap"), "a tap is left in the root namespace: {links}");
    ensure!(!lab.exists(), "{} is left", lab.display());
    ensure!(op.dir.join("hosts.toml").is_file(), "the operator's inventory is gone");
    op.phase(&format!("lab down: no namespace, none of its {} processes, no tap, no lab files left", pids.len()));
    Ok(())
}
