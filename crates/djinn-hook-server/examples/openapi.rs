//! Prints the OpenAPI document of the API (what `GET /openapi.json` answers); `cargo xtask
//! openapi` writes it to `docs/openapi.json`.

fn main() {
    print!("{}", djinn_hook_server::openapi::document_text());
}
