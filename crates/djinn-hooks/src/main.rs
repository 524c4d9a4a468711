//! The djinn-hooks binary (placeholder).
fn main() {}
