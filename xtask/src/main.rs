//! Workspace chores, run as `cargo xtask <task>` (the alias is in `.cargo/config.toml`).
//!
//! - `cargo xtask fixtures`: regenerate `docs/examples/` and `docs/events.md`
//!   from the payload crate's examples and schema;
//! - `cargo xtask fixtures --check`: write nothing, fail naming every stale,
//!   missing or stray generated file;
//! - `cargo xtask openapi [--check]`: regenerate (or check) `docs/openapi.json` and
//!   `docs/schemas/`, the API's OpenAPI document and each event's JSON Schema;
//! - `cargo xtask comments`: fail naming every comment line wider than 100 columns;
//! - `cargo xtask manual [DIR]`: write the man pages and shell completions (default
//!   `target/manual`).

mod comments;
mod events_md;
mod fixtures;
mod manual;
mod openapi;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;

const USAGE: &str =
    "usage: cargo xtask fixtures [--check] | openapi [--check] | comments | manual [DIR]

tasks:
  fixtures          regenerate docs/examples/ and docs/events.md
  fixtures --check  write nothing; fail if any generated file is stale
  openapi           regenerate docs/openapi.json and docs/schemas/
  openapi --check   write nothing; fail if either is stale
  comments          fail naming every comment line wider than 100 columns
  manual [DIR]      write man pages and shell completions into DIR (default target/manual)";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> anyhow::Result<()> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["fixtures"] => {
            let written = fixtures::write(&repo_root())?;
            println!("{}", fixtures::summary(&written));
            Ok(())
        }
        ["fixtures", "--check"] => {
            fixtures::check(&repo_root())?;
            println!("generated files are up to date");
            Ok(())
        }
        ["openapi"] => {
            let written = openapi::sync(&repo_root(), fixtures::Mode::Write)?;
            println!("{}", fixtures::summary(&written));
            Ok(())
        }
        ["openapi", "--check"] => {
            openapi::check(&repo_root())?;
            println!("docs/openapi.json and docs/schemas/ are up to date");
            Ok(())
        }
        ["comments"] => {
            let files = comments::check(&repo_root())?;
            println!(
                "every comment line of {files} files fits in {} columns",
                comments::MAX_WIDTH
            );
            Ok(())
        }
        ["manual", rest @ ..] if rest.len() <= 1 => {
            let root = repo_root();
            let out = rest
                .first()
                .map_or_else(|| manual::default_out(&root), PathBuf::from);
            let written = manual::write(&root, &out)?;
            println!("wrote {written} files into {}", out.display());
            Ok(())
        }
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("unknown arguments {args:?}\n{USAGE}"),
    }
}

/// The workspace root: xtask lives in `<root>/xtask`.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits one level below the workspace root")
        .to_path_buf()
}
