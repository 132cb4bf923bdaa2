//! `metalboot-installer`: parse the command, run.

use anyhow::Result;
use clap::Parser;
use metalboot_installer::cli::{Cli, Command, Place};
use metalboot_installer::https;
use metalboot_installer::init::{self, read_plan};
use metalboot_installer::install::{self, Options};
use metalboot_installer::probe;
use metalboot_installer::report::Reporter;
use std::path::{Path, PathBuf};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init => init::run(),
        Command::Probe { json } => probe_cmd(json),
        Command::Plan { place, .. } => plan_cmd(&place),
        Command::Install { place, token, no_bootloader, no_report, host_keys, no_phone_home } => {
            let mut opts = options(&place, &token);
            opts.bootloader = !no_bootloader;
            opts.host_keys = host_keys;
            opts.phone_home = !no_phone_home;
            install_cmd(&place, &opts, no_report)
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("metalboot: error: {e:#}");
            // the console's last lines, before the shell takes it
            metalboot_installer::console_log::finish(std::time::Duration::from_secs(3));
            std::process::ExitCode::FAILURE
        }
    }
}

fn options(place: &Place, token: &str) -> Options {
    Options {
        sys: PathBuf::from("/sys"),
        loop_only: place.loop_only,
        target: place.target.clone(),
        scratch: place.scratch.clone(),
        token: token.to_string(),
        bootloader: true,
        host_keys: None,
        phone_home: true,
        pins: None,
    }
}

fn probe_cmd(json: bool) -> Result<()> {
    let disks = probe::probe_disks(Path::new("/sys"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&disks)?);
    } else {
        for d in &disks {
            println!("{}", probe::describe(d));
        }
    }
    Ok(())
}

fn plan_cmd(place: &Place) -> Result<()> {
    let plan = read_plan(&place.plan)?;
    let dry = install::dry_run(&plan, &options(place, ""))?;
    println!("{}", serde_json::to_string_pretty(&dry)?);
    Ok(())
}

fn install_cmd(place: &Place, opts: &Options, no_report: bool) -> Result<()> {
    let plan = read_plan(&place.plan)?;
    let events = (!no_report).then(|| plan.endpoints.events.clone());
    let mut rep = Reporter::new(events, &opts.token, https::agent(opts.pins.as_ref()));
    let report = install::install(&plan, opts, &mut rep)?;
    println!("metalboot: installed; host keys:");
    for k in report.host_keys {
        println!("  {k}");
    }
    if let Some(k) = report.backup_key {
        println!("metalboot: backup key (authorise it on the send targets):\n  {k}");
    }
    Ok(())
}
