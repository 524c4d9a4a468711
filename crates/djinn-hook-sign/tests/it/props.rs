//! Property tests of the header parsers a receiver feeds from the network: the
//! `X-Djinn-CI-Signature` value and the three Standard Webhooks headers. Never a panic, a
//! precise error for a malformed value, never a match without the secret, and
//! parse(print(x)) == x.
//!
//! Cases: proptest's default (256 per property); `PROPTEST_CASES=100000 cargo test -p
//! djinn-hook-sign --test it props` runs more.

use std::time::Duration;

use djinn_hook_sign::{
    DEFAULT_TOLERANCE, Secret, Signature, StandardHeaders, StandardSecret, VerifyError, sign,
    sign_standard, sign_standard_all, verify, verify_standard,
};
use proptest::prelude::*;

/// Header values: anything, and things close to a valid one.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,80}",
        "(sha256|sha1|v1|SHA256)?[=,]?[0-9a-fA-F]{0,70}[ \t]?",
        "[ \t]?sha256=[0-9a-fA-F]{64}[ \t.xg]?",
        "(v1,[A-Za-z0-9+/=]{0,46} ?){0,20}",
        "(v1a?,[A-Za-z0-9+/]{43}= ?){1,3}",
    ]
}

proptest! {
    #[test]
    fn signature_parses_only_the_exact_form(value in header_value()) {
        let strict = value.len() == 71
            && value.starts_with("sha256=")
            && value[7..].bytes().all(|b| b.is_ascii_hexdigit());
        match value.parse::<Signature>() {
            Ok(signature) => {
                prop_assert!(strict, "{value:?} accepted");
                prop_assert_eq!(signature.to_header_value(), value.to_ascii_lowercase());
            }
            Err(error) => {
                prop_assert!(!strict, "{value:?} refused: {error}");
                prop_assert!(!error.to_string().is_empty());
            }
        }
    }

    #[test]
    fn signature_round_trips(tag in any::<[u8; 32]>()) {
        let value = Signature::from_bytes(tag).to_header_value();
        let parsed: Signature = value.parse().unwrap();
        prop_assert_eq!(parsed.as_bytes(), &tag);
    }

    #[test]
    fn verify_accepts_only_the_signature_of_the_body(
        secret in prop::collection::vec(any::<u8>(), 1..40),
        body in prop::collection::vec(any::<u8>(), 0..200),
        value in header_value(),
    ) {
        let secret = Secret::new(&secret);
        let genuine = sign(&secret, &body).to_header_value();
        prop_assert_eq!(verify(&secret, &body, &genuine), Ok(()));
        let got = verify(&secret, &body, &value);
        if value.eq_ignore_ascii_case(&genuine) {
            prop_assert_eq!(got, Ok(()));
        } else {
            prop_assert!(got.is_err(), "{value:?} matched");
        }
    }

    #[test]
    fn standard_headers_never_panic_and_never_match_without_the_secret(
        id in ".{0,40}",
        timestamp in prop_oneof!["[0-9]{0,22}", ".{0,24}", Just("1700000000".to_owned())],
        signature in header_value(),
        body in prop::collection::vec(any::<u8>(), 0..100),
    ) {
        let secret = StandardSecret::from_bytes(b"a fixed test key");
        let headers = StandardHeaders { id: &id, timestamp: &timestamp, signature: &signature };
        let got = verify_standard(&[secret], &headers, &body, 1_700_000_000, DEFAULT_TOLERANCE);
        match got {
            // A random value matching an HMAC would be a forgery.
            Ok(()) => prop_assert!(false, "{headers:?} verified"),
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    #[test]
    fn standard_signatures_round_trip(
        keys in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..40), 1..4),
        id in "[^.]{1,40}",
        timestamp in 0i64..4_000_000_000,
        body in prop::collection::vec(any::<u8>(), 0..200),
        skew in -300i64..=300,
    ) {
        let secrets: Vec<StandardSecret> =
            keys.iter().map(|k| StandardSecret::from_bytes(k)).collect();
        let now = timestamp + skew;
        let ts = timestamp.to_string();
        // One signature per secret, each verifying alone, and all of them together.
        for secret in &secrets {
            let signature = sign_standard(secret, &id, timestamp, &body);
            let headers = StandardHeaders { id: &id, timestamp: &ts, signature: &signature };
            prop_assert_eq!(
                verify_standard(std::slice::from_ref(secret), &headers, &body, now, DEFAULT_TOLERANCE),
                Ok(())
            );
        }
        let all = sign_standard_all(&secrets, &id, timestamp, &body);
        for secret in &secrets {
            let headers = StandardHeaders { id: &id, timestamp: &ts, signature: &all };
            prop_assert_eq!(
                verify_standard(std::slice::from_ref(secret), &headers, &body, now, DEFAULT_TOLERANCE),
                Ok(())
            );
        }
        // Another body does not verify.
        let mut other = body.clone();
        other.push(0);
        let headers = StandardHeaders { id: &id, timestamp: &ts, signature: &all };
        prop_assert_eq!(
            verify_standard(&secrets, &headers, &other, now, DEFAULT_TOLERANCE),
            Err(VerifyError::Mismatch)
        );
        // Outside the tolerance, a precise error whichever way.
        let late = verify_standard(&secrets, &headers, &body, now + 600, Duration::from_secs(299));
        let is_too_old = matches!(late, Err(VerifyError::TimestampTooOld { .. }));
        prop_assert!(is_too_old, "{:?}", late);
    }
}
