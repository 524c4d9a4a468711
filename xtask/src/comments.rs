//! `cargo xtask comments`: every comment line of the workspace's Rust files fits in 100 columns.
//!
//! rustfmt keeps code within `max_width` (rustfmt.toml) but, on the stable toolchain, leaves
//! comments as they are (`wrap_comments` is unstable), so this check stands in for it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The widest a comment line may be, in characters, as rustfmt's `max_width`.
pub(crate) const MAX_WIDTH: usize = 100;

/// The folders whose `.rs` files are checked, relative to the workspace root.
const FOLDERS: [&str; 3] = ["crates", "tests", "xtask"];

/// Fails naming every comment line over [`MAX_WIDTH`] (`path:line: N columns`).
pub(crate) fn check(root: &Path) -> anyhow::Result<usize> {
    let mut files = Vec::new();
    for folder in FOLDERS {
        rust_files(&root.join(folder), &mut files)?;
    }
    let mut too_wide = Vec::new();
    for file in &files {
        let text =
            fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for (index, line) in text.lines().enumerate() {
            let width = line.chars().count();
            if width > MAX_WIDTH && line.trim_start().starts_with("//") {
                let shown = file.strip_prefix(root).unwrap_or(file);
                too_wide.push(format!(
                    "{}:{}: {width} columns",
                    shown.display(),
                    index + 1
                ));
            }
        }
    }
    if !too_wide.is_empty() {
        bail!(
            "{} comment lines are wider than {MAX_WIDTH} columns; wrap them:\n{}",
            too_wide.len(),
            too_wide.join("\n")
        );
    }
    Ok(files.len())
}

/// Every `.rs` file under `folder`, skipping build output.
fn rust_files(folder: &Path, into: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = fs::read_dir(folder).with_context(|| format!("listing {}", folder.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name != "target") {
                rust_files(&path, into)?;
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            into.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_comment_is_named_and_a_wide_string_is_not() {
        let root = tempfile_root();
        let crates = root.join("crates");
        fs::create_dir_all(&crates).unwrap();
        for folder in ["tests", "xtask"] {
            fs::create_dir_all(root.join(folder)).unwrap();
        }
        let wide = "x".repeat(MAX_WIDTH);
        fs::write(
            crates.join("ok.rs"),
            format!("const S: &str = \"{wide}\";\n// short\n"),
        )
        .unwrap();
        assert_eq!(check(&root).unwrap(), 1);
        fs::write(
            crates.join("bad.rs"),
            format!("fn f() {{}}\n    // {wide}\n"),
        )
        .unwrap();
        let error = check(&root).unwrap_err().to_string();
        assert!(error.contains("crates/bad.rs:2: 107 columns"), "{error}");
        assert!(!error.contains("ok.rs"), "{error}");
        fs::remove_dir_all(&root).unwrap();
    }

    /// A fresh folder under the system's temporary folder.
    fn tempfile_root() -> PathBuf {
        let root = std::env::temp_dir().join(format!("xtask-comments-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        root
    }
}
