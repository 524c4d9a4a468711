//! A webhook receiver in a few lines: check `X-Djinn-CI-Signature` with djinn-hook-sign.
//!
//! Run: `cargo run -p djinn-hooks --example receiver -- 127.0.0.1:9091 "$(cat hook-secret.txt)"`
//!
//! Built against the workspace's patched tiny_http (vendor/tiny_http/PATCHES.md). With tiny_http
//! 0.12 from crates.io, a burst of new keep-alive connections can wait behind idle ones: deliver
//! to such a copy with `worker --concurrency 4` or less (see the tour in README.md).

use djinn_hook_sign::{Secret, verify};

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9091".into());
    let secret = Secret::new(args.next().expect("usage: receiver ADDR SECRET"));
    let server = tiny_http::Server::http(&addr).expect("listen");
    println!("receiving on http://{addr}/");
    for mut request in server.incoming_requests() {
        let header = |name: &str| {
            request
                .headers()
                .iter()
                .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
                .map(|h| h.value.to_string())
        };
        let event = header("X-Djinn-CI-Event").unwrap_or_default();
        let signature = header("X-Djinn-CI-Signature").unwrap_or_default();
        let mut body = Vec::new();
        if request.as_reader().read_to_end(&mut body).is_err() {
            continue;
        }
        // One call: constant-time HMAC-SHA256 check of the exact body bytes.
        let status = match verify(&secret, &body, &signature) {
            Ok(()) => 204,
            Err(err) => {
                eprintln!("rejected {event}: {err}");
                401
            }
        };
        println!("{event}: {} bytes, answered {status}", body.len());
        let _ = request.respond(tiny_http::Response::empty(status));
    }
}
