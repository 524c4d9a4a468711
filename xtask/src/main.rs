//! Workspace chores (placeholder).
fn main() {}
