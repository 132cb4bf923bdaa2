//! `make demo`: PXE-install one QEMU VM from metalboot on a private network
//! namespace, log in over SSH, print what the new host says about itself and
//! the phase timeline, and clean up.

use metalboot_e2e::harness::Image;
use metalboot_e2e::scenarios::pxe_install;
use metalboot_e2e::vm::Firmware;

fn main() -> std::process::ExitCode {
    println!("metalboot demo: a QEMU VM (SeaBIOS + iPXE) network-boots from metalboot in a private");
    println!("network namespace, is installed onto a blank disk, reboots, and is reached over SSH.\n");
    // a VM gets the VM image (the cloud kernel); the BIOS e2e scenario
    // covers the generic image bare metal gets
    match pxe_install(Firmware::Bios, "demo", Image::Cloud) {
        Ok((s, facts)) => {
            println!(
                "\n--- the installed host, over SSH (host key checked against the one metalboot recorded) ---\n{facts}"
            );
            println!("logs: {}", s.dir.display());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
