//! Manual pages and shell completions made from the command line's own
//! definition (the `clap` command of `metalboot`), so they never drift
//! from it:
//! `metalboot.1` and one page per subcommand (`metalboot-serve.1`, …), and
//! completions for bash, zsh and fish. The Debian package ships them.

use anyhow::{Context, Result};
use std::path::Path;

/// Writes `man/*.1` and `completions/{metalboot.bash,_metalboot,metalboot.fish}`
/// for `cmd` under `dir`.
pub fn write(cmd: clap::Command, dir: &Path) -> Result<()> {
    let man = dir.join("man");
    std::fs::create_dir_all(&man).with_context(|| format!("creating {}", man.display()))?;
    clap_mangen::generate_to(cmd.clone(), &man)
        .with_context(|| format!("writing manual pages to {}", man.display()))?;
    let comp = dir.join("completions");
    std::fs::create_dir_all(&comp).with_context(|| format!("creating {}", comp.display()))?;
    use clap_complete::Shell;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd.clone(), "metalboot", &comp)
            .with_context(|| format!("writing {shell} completions to {}", comp.display()))?;
    }
    Ok(())
}
