//! `cargo xtask manual [DIR]`: the man pages and shell completion scripts, written by the built
//! binary's `manpages` and `completions` commands (so they come from the clap definitions, never
//! from a copy), into `DIR/man/` and `DIR/completions/` (default `target/manual`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The shells and the file name each looks for.
const SHELLS: [(&str, &str); 3] = [
    ("bash", "djinn-hooks"),
    ("zsh", "_djinn-hooks"),
    ("fish", "djinn-hooks.fish"),
];

/// Writes the pages and scripts into `out` and returns how many files it wrote.
pub(crate) fn write(root: &Path, out: &Path) -> anyhow::Result<usize> {
    let man = out.join("man");
    let pages = run_binary(root, &["manpages", path_str(&man)?])?;
    let completions = out.join("completions");
    fs::create_dir_all(&completions)
        .with_context(|| format!("cannot create {}", completions.display()))?;
    for (shell, file) in SHELLS {
        let script = run_binary(root, &["completions", shell])?;
        let path = completions.join(file);
        fs::write(&path, script).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(pages.lines().count() + SHELLS.len())
}

/// The default output folder.
pub(crate) fn default_out(root: &Path) -> PathBuf {
    root.join("target").join("manual")
}

/// `cargo run -p djinn-hooks -- args`, returning its stdout.
fn run_binary(root: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .current_dir(root)
        .args(["run", "--quiet", "-p", "djinn-hooks", "--"])
        .args(args)
        .output()
        .context("cannot run cargo")?;
    if !output.status.success() {
        bail!(
            "djinn-hooks {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout).context("djinn-hooks wrote something that is not UTF-8")
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}
