//! ring (through this crate) against RustCrypto's `hmac` + `sha2` on random secrets and bodies.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use djinn_hook_sign::{
    DEFAULT_TOLERANCE, Secret, StandardHeaders, StandardSecret, sign, sign_standard, verify,
    verify_standard,
};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// Fixed, so a failure reproduces.
const SEED: u64 = 0x0d71_2205_51a7_0001;
const SMALL_CASES: usize = 300;
const MIB: usize = 1024 * 1024;
/// Bodies of several MiB, at sizes that are not a multiple of the SHA-256 block.
const LARGE_BODIES: [usize; 3] = [2 * MIB + 1, 4 * MIB - 17, 6 * MIB + 63];

fn reference(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn bytes(rng: &mut fastrand::Rng, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rng.fill(&mut out);
    out
}

fn check(key: &[u8], body: &[u8], rng: &mut fastrand::Rng) {
    let expected = reference(key, &[body]);
    let secret = Secret::new(key);
    let signature = sign(&secret, body);
    assert_eq!(
        signature.as_bytes(),
        &expected,
        "key {} bytes, body {} bytes",
        key.len(),
        body.len()
    );
    let header = format!("sha256={}", const_hex::encode(expected));
    assert_eq!(signature.to_header_value(), header);
    assert_eq!(verify(&secret, body, &header), Ok(()));

    let id = format!("msg_{}", rng.u64(..));
    let timestamp = rng.i64(0..4_000_000_000);
    let standard = sign_standard(&StandardSecret::from_bytes(key), &id, timestamp, body);
    let ts = timestamp.to_string();
    let expected = reference(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    assert_eq!(standard, format!("v1,{}", STANDARD.encode(expected)));
    let headers = StandardHeaders {
        id: &id,
        timestamp: &ts,
        signature: &standard,
    };
    let secrets = [StandardSecret::from_bytes(key)];
    assert_eq!(
        verify_standard(&secrets, &headers, body, timestamp, DEFAULT_TOLERANCE),
        Ok(())
    );
}

#[test]
fn random_secrets_and_bodies_match_rustcrypto() {
    let mut rng = fastrand::Rng::with_seed(SEED);
    for case in 0..SMALL_CASES {
        // Every tenth case has an empty secret, every seventh an empty body; secrets go past
        // the 64-byte block (hashed first), bodies across several blocks.
        let key_len = if case % 10 == 0 {
            0
        } else {
            rng.usize(1..=200)
        };
        let body_len = if case % 7 == 0 {
            0
        } else {
            rng.usize(1..=5000)
        };
        let key = bytes(&mut rng, key_len);
        let body = bytes(&mut rng, body_len);
        check(&key, &body, &mut rng);
    }
}

#[test]
fn bodies_of_several_mib_match_rustcrypto() {
    let mut rng = fastrand::Rng::with_seed(SEED ^ 1);
    for len in LARGE_BODIES {
        let key = bytes(&mut rng, 32);
        let body = bytes(&mut rng, len);
        check(&key, &body, &mut rng);
    }
}
