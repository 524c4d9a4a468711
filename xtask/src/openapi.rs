//! `cargo xtask openapi [--check]`: `docs/openapi.json`, the OpenAPI document of the API (printed
//! by the server crate's `openapi` example, so it is the document `GET /openapi.json` serves),
//! and `docs/schemas/<event>.json`, each event's JSON Schema (the payload crate's
//! `event_schema`). `--check` writes nothing and fails naming every stale file.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use djinn_hook_payload::{EventType, event_schema};

use crate::fixtures::{self, Generated, Mode, Stale};

/// The command that regenerates the files, for messages.
pub(crate) const COMMAND: &str = "cargo xtask openapi";

/// The folder whose every file is an event's schema (stray files in it are reported).
const SCHEMAS_DIR: &str = "docs/schemas";

/// The event schemas, in a fixed order, as the server serves them (pretty, a newline).
pub(crate) fn schemas() -> Vec<Generated> {
    EventType::ALL
        .iter()
        .map(|&event| {
            let mut content =
                serde_json::to_string_pretty(&event_schema(event)).expect("JSON serialises");
            content.push('\n');
            Generated {
                path: format!("{SCHEMAS_DIR}/{}.json", event.name()),
                content,
            }
        })
        .collect()
}

/// The document, from the server crate's `openapi` example.
fn document(root: &Path) -> anyhow::Result<Generated> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .current_dir(root)
        .args([
            "run",
            "--quiet",
            "-p",
            "djinn-hook-server",
            "--example",
            "openapi",
        ])
        .output()
        .context("cannot run cargo")?;
    if !output.status.success() {
        bail!(
            "the openapi example failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(Generated {
        path: "docs/openapi.json".to_owned(),
        content: String::from_utf8(output.stdout).context("the document is not UTF-8")?,
    })
}

/// Writes (or, in [`Mode::Check`], compares) the document and the schemas under `root`.
pub(crate) fn sync(root: &Path, mode: Mode) -> anyhow::Result<Vec<Stale>> {
    let mut files = schemas();
    files.push(document(root)?);
    fixtures::sync_files(root, &files, SCHEMAS_DIR, mode)
}

/// `--check`: fails naming every stale file and the fix.
pub(crate) fn check(root: &Path) -> anyhow::Result<()> {
    fixtures::report(&sync(root, Mode::Check)?, COMMAND)
}
