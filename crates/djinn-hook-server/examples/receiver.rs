//! A webhook receiver in a few lines: check `X-Djinn-CI-Signature` with djinn-hook-sign, on the
//! receiver this crate serves (`listen` runs the same).
//!
//! Run: `cargo run -p djinn-hook-server --example receiver -- 127.0.0.1:9091 "$(cat
//! hook-secret.txt)"`
//!
//! To mount the check in an axum application of your own, use
//! `djinn_hook_server::receiver::router(secret, |received| …)` instead of `Receiver::start`.

use std::time::Duration;

use djinn_hook_server::Receiver;
use djinn_hook_sign::Secret;

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9091".into());
    let secret = Secret::new(args.next().expect("usage: receiver ADDR SECRET"));
    let receiver = Receiver::start(&addr, secret).expect("listen");
    println!("receiving on http://{}/", receiver.addr());
    loop {
        let Some(got) = receiver.next_timeout(Duration::from_secs(3600)) else {
            continue;
        };
        // Checked already: constant-time HMAC-SHA256 of the exact body bytes; 204 or 401 sent.
        let status = if got.signature_valid { 204 } else { 401 };
        println!(
            "{}: {} bytes, answered {status}",
            got.event().unwrap_or("-"),
            got.body.len()
        );
    }
}
