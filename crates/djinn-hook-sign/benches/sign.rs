//! Sign and verify at 64 B, 2 KiB, 16 KiB and 1 MiB, next to ring's bare `hmac::sign` and
//! `hmac::verify` (the baselines: all this crate adds is hex rendering and parsing).
//!
//! `benches/compare.sh` runs this next to `openssl speed -hmac sha256` and prints the ratios.

use divan::{Bencher, black_box, counter::BytesCount};
use djinn_hook_sign::{Secret, sign, verify};
use ring::hmac;

const SIZES: [usize; 4] = [64, 2 * 1024, 16 * 1024, 1024 * 1024];
const SECRET: &[u8] = b"a webhook secret of thirty-two b";

fn main() {
    divan::main();
}

fn body(len: usize) -> Vec<u8> {
    let mut body = vec![0u8; len];
    fastrand::Rng::with_seed(len as u64).fill(&mut body);
    body
}

/// Baseline: ring's HMAC-SHA256 with a precomputed key, tag left as bytes.
#[divan::bench(args = SIZES)]
fn ring_hmac_sign(bencher: Bencher<'_, '_>, len: usize) {
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
    let body = body(len);
    bencher
        .counter(BytesCount::new(len))
        .bench(|| hmac::sign(&key, black_box(&body)));
}

/// What a sender does: sign and render the `X-Djinn-CI-Signature` value.
#[divan::bench(args = SIZES)]
fn sign_header(bencher: Bencher<'_, '_>, len: usize) {
    let secret = Secret::new(SECRET);
    let body = body(len);
    bencher
        .counter(BytesCount::new(len))
        .bench(|| sign(&secret, black_box(&body)).to_header_value());
}

/// Baseline: ring's constant-time verify of a raw tag.
#[divan::bench(args = SIZES)]
fn ring_hmac_verify(bencher: Bencher<'_, '_>, len: usize) {
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
    let body = body(len);
    let tag = hmac::sign(&key, &body);
    bencher
        .counter(BytesCount::new(len))
        .bench(|| hmac::verify(&key, black_box(&body), black_box(tag.as_ref())));
}

/// What a receiver does: parse the header value and verify.
#[divan::bench(args = SIZES)]
fn verify_header(bencher: Bencher<'_, '_>, len: usize) {
    let secret = Secret::new(SECRET);
    let body = body(len);
    let header = sign(&secret, &body).to_header_value();
    bencher
        .counter(BytesCount::new(len))
        .bench(|| verify(&secret, black_box(&body), black_box(&header)));
}
