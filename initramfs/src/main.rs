//! `metalboot-initramfs`: builds the installer initramfs (and, with
//! `rootfs`, the root filesystem image) from Debian packages.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use metalboot_initramfs::{image, kernel, rootfs};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "metalboot-initramfs", version, about = "Build metalboot's boot images from Debian packages")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build vmlinuz + initramfs.img into OUT.
    Initramfs {
        /// The metalboot-installer binary to ship.
        #[arg(long)]
        installer: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Download/unpack cache.
        #[arg(long, default_value = "target/assets-cache")]
        cache: PathBuf,
        /// Kernel metapackage.
        #[arg(long, default_value = "linux-image-amd64")]
        kernel_package: String,
        /// mtime for every archive entry (default: SOURCE_DATE_EPOCH or 0).
        #[arg(long, env = "SOURCE_DATE_EPOCH", default_value_t = 0)]
        mtime: u32,
    },
    /// Build rootfs.tar.zst (cloud: rootfs-cloud.tar.zst) (+ .sha256, manifest) into OUT with mmdebstrap.
    Rootfs {
        /// Kernel: generic (linux-image-amd64, bare metal) or cloud (linux-image-cloud-amd64, VMs).
        #[arg(long, value_enum, default_value_t = rootfs::Flavour::Generic)]
        flavour: rootfs::Flavour,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Build cache.
        #[arg(long, default_value = "target/assets-cache")]
        cache: PathBuf,
        /// Debian suite.
        #[arg(long, env = "METALBOOT_SUITE", default_value = "bookworm")]
        suite: String,
        /// mmdebstrap mirror (URL, sources line or file); default: this machine's apt sources.
        #[arg(long, env = "METALBOOT_MIRROR")]
        mirror: Option<String>,
    },
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Initramfs { installer, out, cache, kernel_package, mtime } => {
            let t0 = Instant::now();
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            std::fs::create_dir_all(&cache)?;
            let k = kernel::fetch(&cache.join("kernel"), &kernel_package)?;
            let t_kernel = t0.elapsed();
            let vmlinuz = out.join("vmlinuz");
            std::fs::copy(&k.vmlinuz, &vmlinuz).with_context(|| format!("copying {}", k.vmlinuz.display()))?;
            let (archive, report) = image::build_archive(&k, &installer, mtime, &cache)?;
            let report = image::write_initramfs(&archive, report, &out.join("initramfs.img"))?;
            std::fs::write(out.join("initramfs.manifest.json"), serde_json::to_string_pretty(&report)? + "\n")?;
            let kernel_size = std::fs::metadata(&vmlinuz)?.len();
            println!("kernel:     {} ({:.1} MiB)", report.kernel, kernel_size as f64 / 1048576.0);
            for (name, bytes) in &report.components {
                println!("  {name:<28} {:>8.1} KiB", *bytes as f64 / 1024.0);
            }
            println!(
                "modules:    {} ({} wanted but absent: {})",
                report.module_count,
                report.modules_absent.len(),
                report.modules_absent.join(" ")
            );
            println!(
                "initramfs:  {} entries, {:.1} MiB uncompressed, {:.1} MiB zstd",
                report.entries,
                report.cpio_bytes as f64 / 1048576.0,
                report.compressed_bytes as f64 / 1048576.0
            );
            println!("time:       {:.1}s (kernel fetch {:.1}s)", t0.elapsed().as_secs_f64(), t_kernel.as_secs_f64());
            Ok(())
        }
        Cmd::Rootfs { flavour, out, cache, suite, mirror } => {
            let t0 = Instant::now();
            std::fs::create_dir_all(&cache)?;
            let spec =
                rootfs::RootfsSpec { suite, mirror: mirror.or_else(rootfs::default_mirror), out, cache, flavour };
            let (img, cached) = rootfs::build(&spec)?;
            let size = std::fs::metadata(&img)?.len();
            let packages =
                std::fs::read_to_string(spec.out.join(flavour.manifest_name())).map(|m| m.lines().count()).unwrap_or(0);
            println!(
                "rootfs:     {} ({:.1} MiB, {packages} packages){} in {:.1}s",
                img.display(),
                size as f64 / 1048576.0,
                if cached { " unchanged" } else { "" },
                t0.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}
