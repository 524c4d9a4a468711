//! Integration tests of djinn-hook-payload: event bits and names, parsing and
//! its errors, compatibility with the original's example files, the examples
//! (snapshots) and the schema's agreement with what is serialised.

mod event;
mod examples;
mod parse;
mod props;
mod schema;
mod upstream;

use std::path::PathBuf;

use serde_json::Value;

/// The shared reference folder, checked out beside the repository
/// (`/work/main` and `/work/shared` here; CI clones the same way).
fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference")
}

/// Reads a reference file, failing (never skipping) with a clear message when
/// it is not there.
fn read_reference(relative: &str) -> String {
    let path = reference_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {} ({error}): these tests need the shared reference \
             (UPSTREAM.md, djinn-docs/) checked out as `shared/` beside the repository",
            path.display()
        )
    })
}

/// The JSON value of a payload's signed body.
fn body_value(payload: &djinn_hook_payload::Payload) -> Value {
    serde_json::from_slice(&payload.to_body()).expect("the body is JSON")
}
