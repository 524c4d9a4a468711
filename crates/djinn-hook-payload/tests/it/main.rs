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

/// The crate's test data: the upstream example payloads (`upstream/`, with
/// their LICENSE and NOTICE) and the event bit table.
fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Reads a file of the test data.
fn read_data(relative: &str) -> String {
    let path = data_dir().join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {} ({error})", path.display()))
}

/// The JSON value of a payload's signed body.
fn body_value(payload: &djinn_hook_payload::Payload) -> Value {
    serde_json::from_slice(&payload.to_body()).expect("the body is JSON")
}
