//! `metalboot lab`: the inventory's hosts as QEMU VMs on a private network,
//! installed through the production path and handed to the config layer,
//! so that playbooks are tested against machines installed exactly as the
//! real ones are.
//!
//! `up` makes a network namespace with a bridge and a tap per host (nothing
//! on the host's own networks), runs `metalboot serve` in it with full
//! DHCP, boots one VM per host with the host's MAC, firmware and disks, and
//! waits until every host is installed and answers SSH with the host keys
//! its installer reported. `run` runs a command in reach of the lab with
//! the inventory, key and known_hosts in its environment; `down` stops
//! everything by process id. The project's own QEMU tests use the same
//! namespaces, VMs and KVM check.

pub mod access;
pub mod kvm;
pub mod netns;
pub mod ops;
pub mod setup;
pub mod snapshot;
pub mod start;
pub mod state;
pub mod stop;
pub mod up;
pub mod vm;

use anyhow::Result;
use std::path::{Path, PathBuf};

/// `metalboot lab` and its options.
#[derive(clap::Args, Debug)]
pub struct LabArgs {
    /// The lab's directory: its state file, disks, logs, inventory and keys.
    #[arg(long, env = "METALBOOT_LAB_DIR", default_value = "metalboot-lab")]
    pub dir: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub action: LabAction,
}

/// `lab` actions.
#[derive(clap::Subcommand, Debug)]
pub enum LabAction {
    /// Start the lab: network, server, one VM per host; wait until every
    /// host is installed and reachable.
    Up(up::UpArgs),
    /// Run a command inside the lab's network with ANSIBLE_INVENTORY,
    /// ANSIBLE_PRIVATE_KEY_FILE, ANSIBLE_SSH_ARGS (host keys checked) and
    /// METALBOOT_LAB_SSH_CONFIG set: `metalboot lab run -- ansible-playbook site.yml`.
    Run {
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "CMD")]
        cmd: Vec<String>,
    },
    /// The server, and each host's state, address and VM.
    Status,
    /// A host's serial console.
    Console {
        /// Host name.
        name: String,
        /// Keep printing until the VM stops.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Reinstall a host through `metalboot reinstall` (over SSH, kexec into
    /// the installer) and wait until it is back.
    Reinstall {
        /// Host name.
        name: String,
    },
    /// Stop the VMs and the server, remove the namespace and the lab's files.
    Down,
    /// Copy standard input and output to HOST:PORT inside the lab's
    /// namespace (the SSH config's ProxyCommand).
    #[command(hide = true)]
    Relay {
        /// Address in the lab.
        host: String,
        /// TCP port.
        port: u16,
    },
}

/// Runs a `lab` command; the exit code to leave with.
pub fn run(cfg_path: Option<&Path>, args: LabArgs) -> Result<i32> {
    let dir = args.dir.as_path();
    match args.action {
        LabAction::Up(a) => up::up(cfg_path, dir, &a).map(|()| 0),
        LabAction::Run { cmd } => ops::run(dir, &cmd),
        LabAction::Status => ops::status(dir).map(|()| 0),
        LabAction::Console { name, follow } => ops::console(dir, &name, follow).map(|()| 0),
        LabAction::Reinstall { name } => ops::reinstall(dir, &name).map(|()| 0),
        LabAction::Down => ops::down(dir).map(|()| 0),
        LabAction::Relay { host, port } => ops::relay(dir, &host, port).map(|()| 0),
    }
}
