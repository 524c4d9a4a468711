//! Builds the PostgreSQL conformance tests as ignored (with the reason shown)
//! unless `DJINN_TEST_POSTGRES_URL` names a server to run them on and the
//! `postgres` feature is on.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    println!("cargo::rerun-if-env-changed=DJINN_TEST_POSTGRES_URL");
    let url_set = std::env::var_os("DJINN_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty());
    if url_set && std::env::var_os("CARGO_FEATURE_POSTGRES").is_some() {
        println!("cargo::rustc-cfg=postgres_tests");
    }
}
