//! The installer's command-line interface: what an operator (or the
//! initramfs's `/init`) may ask of it. Parsed with clap, so a misspelt flag
//! on a command that writes disks is refused, never ignored.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// `metalboot-installer`.
#[derive(Parser, Debug)]
#[command(name = "metalboot-installer", version, about = "metalboot's installer: installs one host from its plan")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The installer's commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run as the installer initramfs's installer (reads /proc/cmdline).
    Init,
    /// Print the disks this machine has; touch nothing.
    Probe {
        /// JSON instead of one line per disk.
        #[arg(long)]
        json: bool,
    },
    /// Print what an install would do; touch nothing.
    Plan {
        /// Required: only a dry run exists.
        #[arg(long, required = true)]
        dry_run: bool,
        /// Where to install.
        #[command(flatten)]
        place: Place,
    },
    /// Install from a local plan file.
    Install {
        /// Where to install.
        #[command(flatten)]
        place: Place,
        /// The install token (for the phone-home unit and the reports).
        #[arg(long, default_value = "")]
        token: String,
        /// Do not install GRUB.
        #[arg(long)]
        no_bootloader: bool,
        /// Do not post progress events to the plan's events URL.
        #[arg(long)]
        no_report: bool,
        /// Install the `ssh_host_*` files of this directory instead of making host keys.
        #[arg(long, value_name = "DIR")]
        host_keys: Option<PathBuf>,
        /// Do not enable the first-boot phone-home unit.
        #[arg(long)]
        no_phone_home: bool,
    },
}

/// The plan and the places an install uses.
#[derive(Args, Debug)]
pub struct Place {
    /// The install plan (JSON).
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// Consider only loop devices (tests on a build machine).
    #[arg(long)]
    pub loop_only: bool,
    /// Where the new system is mounted.
    #[arg(long, default_value = "/target")]
    pub target: PathBuf,
    /// Scratch mount point for the top-level subvolume.
    #[arg(long, default_value = "/mnt/metalboot-top")]
    pub scratch: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("metalboot-installer").chain(args.iter().copied()))
    }

    #[test]
    fn a_misspelt_flag_on_install_is_refused() {
        let e = parse(&["install", "--plan", "p.json", "--no-bootlaoder"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
        assert!(e.to_string().contains("--no-bootlaoder"));
    }

    #[test]
    fn install_takes_its_flags_and_defaults() {
        let Command::Install { place, token, no_bootloader, no_report, host_keys, no_phone_home } =
            parse(&["install", "--plan", "p.json", "--loop-only", "--token", "t-1", "--no-bootloader"])
                .unwrap()
                .command
        else {
            panic!("not install")
        };
        assert_eq!(place.plan, PathBuf::from("p.json"));
        assert!(place.loop_only && no_bootloader && !no_report && !no_phone_home);
        assert_eq!((token.as_str(), host_keys), ("t-1", None));
        assert_eq!(place.target, PathBuf::from("/target"));
    }

    #[test]
    fn plan_needs_dry_run_and_a_plan() {
        assert!(parse(&["plan", "--plan", "p.json"]).is_err());
        assert!(parse(&["plan", "--dry-run"]).is_err());
        assert!(matches!(parse(&["plan", "--dry-run", "--plan", "p"]).unwrap().command, Command::Plan { .. }));
        assert!(parse(&["wipe"]).is_err());
    }
}
