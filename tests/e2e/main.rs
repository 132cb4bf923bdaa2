//! QEMU end-to-end scenarios (run as root by `make e2e`): a VM PXE-boots
//! from metalboot, is installed, reboots into its disk and is reached over
//! SSH with the enrolled key, the host key checked against what the server
//! recorded.

use metalboot_e2e::scenarios::pxe_install;
use metalboot_e2e::vm::Firmware;

#[test]
#[ignore = "QEMU end to end, as root: run by `make e2e`"]
fn bios_full_dhcp_install_boot_and_ssh() {
    pxe_install(Firmware::Bios, "bios").unwrap();
}

#[test]
#[ignore = "QEMU end to end, as root: run by `make e2e`"]
fn uefi_full_dhcp_install_boot_and_ssh() {
    pxe_install(Firmware::Uefi, "uefi").unwrap();
}
