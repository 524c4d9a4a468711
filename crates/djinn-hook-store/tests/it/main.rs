//! Integration tests of djinn-hook-store, on real temporary database files.

mod claim;
mod faults;
mod files;
mod flows;
mod hooks;
mod log;
mod props;
mod race;
mod schema;
mod secrets;
mod support;
mod test_delivery;
