//! The manual pages and completions `metalboot generate-docs` writes for
//! the package, from the command line's own definition.

use clap::CommandFactory;

#[test]
fn pages_for_every_visible_subcommand_and_three_shells() {
    let dir = tempfile::tempdir().unwrap();
    metalboot::docs::write(metalboot::cli::Cli::command(), dir.path()).unwrap();
    let page = std::fs::read_to_string(dir.path().join("man/metalboot.1")).unwrap();
    assert!(page.contains(".TH metalboot 1"), "{page}");
    for sub in ["serve", "reinstall", "hosts", "check-config"] {
        assert!(dir.path().join(format!("man/metalboot-{sub}.1")).is_file(), "{sub}");
    }
    assert!(!dir.path().join("man/metalboot-generate-docs.1").exists(), "the hidden command has no page");
    for f in ["metalboot.bash", "_metalboot", "metalboot.fish"] {
        let text = std::fs::read_to_string(dir.path().join("completions").join(f)).unwrap();
        assert!(text.contains("reinstall"), "{f}");
    }
}
