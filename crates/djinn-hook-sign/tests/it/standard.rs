//! Standard Webhooks: the published example, timestamps, signature lists, rotation.

use std::time::Duration;

use djinn_hook_sign::{
    DEFAULT_TOLERANCE, MAX_STANDARD_SIGNATURES, SignError, StandardHeaders, StandardSecret,
    VerifyError, sign_standard, sign_standard_all, verify_standard,
};

use crate::data;

/// The spec's example, from `tests/data/standard-webhooks.txt`.
struct Example {
    secret: String,
    id: String,
    timestamp: String,
    body: String,
    signature: String,
}

fn example() -> Example {
    let blocks = data::blocks("standard-webhooks.txt");
    assert_eq!(blocks.len(), 1);
    let block = &blocks[0];
    Example {
        secret: block.field("secret").to_owned(),
        id: block.field("id").to_owned(),
        timestamp: block.field("timestamp").to_owned(),
        body: block.field("body").to_owned(),
        signature: block.field("signature").to_owned(),
    }
}

impl Example {
    fn secrets(&self) -> [StandardSecret; 1] {
        [StandardSecret::from_whsec(&self.secret).expect("the spec's secret parses")]
    }

    fn ts(&self) -> i64 {
        self.timestamp.parse().expect("numeric timestamp")
    }

    fn headers<'a>(&'a self, signature: &'a str) -> StandardHeaders<'a> {
        StandardHeaders {
            id: &self.id,
            timestamp: &self.timestamp,
            signature,
        }
    }

    /// Verifies `headers` over the example's body with its secret at `now`.
    fn verify(&self, headers: &StandardHeaders<'_>, now: i64) -> Result<(), VerifyError> {
        verify_standard(
            &self.secrets(),
            headers,
            self.body.as_bytes(),
            now,
            DEFAULT_TOLERANCE,
        )
    }

    fn verify_at(&self, signature: &str, now: i64) -> Result<(), VerifyError> {
        self.verify(&self.headers(signature), now)
    }
}

#[test]
fn tolerance_follows_the_spec() {
    assert_eq!(DEFAULT_TOLERANCE, Duration::from_secs(300));
}

#[test]
fn published_example_signs_and_verifies() {
    let ex = example();
    let [secret] = ex.secrets();
    assert_eq!(
        sign_standard(&secret, &ex.id, ex.ts(), ex.body.as_bytes()),
        ex.signature
    );
    assert_eq!(ex.verify_at(&ex.signature, ex.ts()), Ok(()));
    assert_eq!(secret.to_whsec(), ex.secret);
}

#[test]
fn tolerance_holds_both_ways_with_the_boundary_included() {
    let ex = example();
    let ts = ex.ts();
    let sig = ex.signature.as_str();
    assert_eq!(ex.verify_at(sig, ts + 300), Ok(()));
    assert_eq!(ex.verify_at(sig, ts - 300), Ok(()));
    assert_eq!(
        ex.verify_at(sig, ts + 301),
        Err(VerifyError::TimestampTooOld {
            timestamp: ts,
            age_secs: 301,
            tolerance_secs: 300
        })
    );
    assert_eq!(
        ex.verify_at(sig, ts - 301),
        Err(VerifyError::TimestampTooNew {
            timestamp: ts,
            ahead_secs: 301,
            tolerance_secs: 300
        })
    );
    // A day-old capture replayed today.
    assert!(matches!(
        ex.verify_at(sig, ts + 86_400),
        Err(VerifyError::TimestampTooOld { .. })
    ));
    // Another tolerance, and the extremes of the clock do not overflow.
    let strict = verify_standard(
        &ex.secrets(),
        &ex.headers(sig),
        ex.body.as_bytes(),
        ts + 2,
        Duration::from_secs(1),
    );
    assert!(matches!(
        strict,
        Err(VerifyError::TimestampTooOld { age_secs: 2, .. })
    ));
    assert!(matches!(
        ex.verify_at(sig, i64::MIN),
        Err(VerifyError::TimestampTooNew { .. })
    ));
    assert!(matches!(
        ex.verify_at(sig, i64::MAX),
        Err(VerifyError::TimestampTooOld { .. })
    ));
}

#[test]
fn timestamp_must_be_a_number() {
    let ex = example();
    for bad in [
        "abc",
        "-1614265330",
        "+1614265330",
        " 1614265330",
        "1614265330 ",
        "1.5",
        "99999999999999999999",
        "1614265330s",
    ] {
        let headers = StandardHeaders {
            timestamp: bad,
            ..ex.headers(&ex.signature)
        };
        assert_eq!(
            ex.verify(&headers, ex.ts()),
            Err(VerifyError::TimestampNotANumber {
                value: bad.to_owned()
            }),
            "{bad:?}"
        );
    }
}

#[test]
fn empty_headers_are_named() {
    let ex = example();
    let full = ex.headers(&ex.signature);
    for (headers, part) in [
        (StandardHeaders { id: "", ..full }, "id"),
        (
            StandardHeaders {
                timestamp: "",
                ..full
            },
            "timestamp",
        ),
        (
            StandardHeaders {
                signature: "",
                ..full
            },
            "signature",
        ),
    ] {
        assert_eq!(
            ex.verify(&headers, ex.ts()),
            Err(VerifyError::EmptyHeader { part })
        );
    }
    assert_eq!(
        verify_standard(&[], &full, ex.body.as_bytes(), ex.ts(), DEFAULT_TOLERANCE),
        Err(VerifyError::NoSecrets)
    );
}

#[test]
fn tampering_with_id_timestamp_or_body_is_a_mismatch() {
    let ex = example();
    let secrets = ex.secrets();
    let ts = ex.ts();
    let sig = ex.signature.as_str();
    let check = |headers: StandardHeaders<'_>, body: &[u8], now: i64| {
        assert_eq!(
            verify_standard(&secrets, &headers, body, now, DEFAULT_TOLERANCE),
            Err(VerifyError::Mismatch)
        );
    };
    let original = ex.headers(sig);
    check(original, br#"{"test": 2432232315}"#, ts);
    check(original, br#"{"test":2432232314}"#, ts);
    check(
        StandardHeaders {
            id: "msg_p5jXN8AQM9LWM0D4loKWxJeK",
            ..original
        },
        ex.body.as_bytes(),
        ts,
    );
    check(
        StandardHeaders {
            timestamp: "1614265331",
            ..original
        },
        ex.body.as_bytes(),
        ts,
    );
    // The reference library's "invalid signature" case.
    check(
        ex.headers("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="),
        ex.body.as_bytes(),
        ts,
    );
    // Shifting a `.` between id and body changes the signed content.
    let wrong = [StandardSecret::from_bytes(b"another secret of 24 b.")];
    assert_eq!(
        verify_standard(&wrong, &original, ex.body.as_bytes(), ts, DEFAULT_TOLERANCE),
        Err(VerifyError::Mismatch)
    );
}

#[test]
fn other_versions_are_ignored_and_any_v1_may_match() {
    let ex = example();
    let ts = ex.ts();
    let decoy = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
    let list = [
        decoy,
        "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        &ex.signature,
        "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==",
    ]
    .join(" ");
    assert_eq!(ex.verify_at(&list, ts), Ok(()));
    // A well-formed v1 next to malformed ones still counts.
    assert_eq!(
        ex.verify_at(&format!("v1,!!! {} v1,abc", ex.signature), ts),
        Ok(())
    );
    // The right tag under another version does not.
    let v2 = ex.signature.replacen("v1,", "v2,", 1);
    assert_eq!(ex.verify_at(&v2, ts), Err(VerifyError::NoV1Signature));
    assert_eq!(
        ex.verify_at("v1a,abcd v2,xyz garbage", ts),
        Err(VerifyError::NoV1Signature)
    );
    assert_eq!(
        ex.verify_at(&ex.signature[3..], ts),
        Err(VerifyError::NoV1Signature)
    );
}

#[test]
fn malformed_v1_signatures_are_reported() {
    let ex = example();
    let ts = ex.ts();
    let unpadded = ex.signature.trim_end_matches('=');
    let url_safe = ex.signature.replace('+', "-").replace('/', "_");
    let hex = format!("v1,{}", "00".repeat(32));
    let short = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1O==";
    for bad in [
        unpadded,
        url_safe.as_str(),
        hex.as_str(),
        short,
        "v1,",
        "v1,g0hM9SsE",
    ] {
        assert_eq!(
            ex.verify_at(bad, ts),
            Err(VerifyError::MalformedV1Signature),
            "{bad:?}"
        );
    }
}

#[test]
fn too_many_signatures_are_refused() {
    let ex = example();
    let decoy = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
    let mut entries = vec![decoy; MAX_STANDARD_SIGNATURES - 1];
    entries.push(&ex.signature);
    assert_eq!(ex.verify_at(&entries.join(" "), ex.ts()), Ok(()));
    entries.push(decoy);
    assert_eq!(
        ex.verify_at(&entries.join(" "), ex.ts()),
        Err(VerifyError::TooManySignatures {
            count: MAX_STANDARD_SIGNATURES + 1,
            max: MAX_STANDARD_SIGNATURES
        })
    );
}

#[test]
fn rotation_with_two_secrets() {
    let old = StandardSecret::from_bytes(&[7u8; 32]);
    let new = StandardSecret::generate().expect("system RNG");
    let body = br#"{"id":1}"#;
    let (id, ts) = ("3f1c8a52-8a8e-4cf5-9d5f-0f1e2d3c4b5a", 1_700_000_000);
    let ts_text = ts.to_string();
    let verify = |secrets: &[StandardSecret], signature: &str| {
        let headers = StandardHeaders {
            id,
            timestamp: &ts_text,
            signature,
        };
        verify_standard(secrets, &headers, body, ts, DEFAULT_TOLERANCE)
    };

    // Sender signs with both during the overlap: a receiver holding either accepts.
    let both = sign_standard_all(&[new.clone(), old.clone()], id, ts, body);
    assert_eq!(both.split(' ').count(), 2);
    assert_eq!(verify(std::slice::from_ref(&old), &both), Ok(()));
    assert_eq!(verify(std::slice::from_ref(&new), &both), Ok(()));
    // Receiver lists both: a sender using either is accepted.
    let receiver = [new.clone(), old.clone()];
    assert_eq!(
        verify(&receiver, &sign_standard(&old, id, ts, body)),
        Ok(())
    );
    assert_eq!(
        verify(&receiver, &sign_standard(&new, id, ts, body)),
        Ok(())
    );
    // A third secret is not.
    let other = StandardSecret::from_bytes(&[8u8; 32]);
    assert_eq!(
        verify(&receiver, &sign_standard(&other, id, ts, body)),
        Err(VerifyError::Mismatch)
    );
}

#[test]
fn whsec_round_trips() {
    let secret = StandardSecret::generate().expect("system RNG");
    let whsec = secret.to_whsec();
    assert!(
        whsec.starts_with("whsec_") && whsec.len() == 6 + 44,
        "{}",
        whsec.len()
    );
    let again = StandardSecret::from_whsec(&whsec).expect("own output parses");
    assert_eq!(again.to_whsec(), whsec);
    assert_eq!(
        sign_standard(&secret, "msg_1", 1, b"x"),
        sign_standard(&again, "msg_1", 1, b"x")
    );
    assert_eq!(
        StandardSecret::from_bytes(&[0xff, 0xfe, 0xfd]).to_whsec(),
        "whsec_//79"
    );
    assert!(matches!(
        StandardSecret::from_whsec("whsec_/w"),
        Err(SignError::WhsecNotBase64)
    ));
}

/// The spec's rule for a symmetric secret, 24 to 64 random bytes, is the parse's: the
/// store refuses a webhook secret this refuses, so no delivery fails on it later.
#[test]
fn a_whsec_secret_holds_24_to_64_bytes_of_padded_base64() {
    use base64::Engine as _;
    let whsec = |len: usize| {
        let bytes = vec![0xa5u8; len];
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    };
    for len in [24, 32, 64] {
        let secret = StandardSecret::from_whsec(&whsec(len)).expect("in range");
        assert_eq!(secret.to_whsec(), whsec(len));
    }
    for len in [1, 6, 23, 65, 100] {
        assert_eq!(
            StandardSecret::from_whsec(&whsec(len)).map(|_| ()),
            Err(SignError::WhsecLength { len }),
            "{len} bytes"
        );
    }
    // The issue's examples: not base64, nothing after the prefix, and padding where base64
    // of "secret" has none.
    for (secret, want) in [
        ("whsec_!!!notbase64", SignError::WhsecNotBase64),
        ("whsec_", SignError::EmptyWhsec),
        ("whsec_c2VjcmV0==", SignError::WhsecNotBase64),
        ("whsec_c2VjcmV0", SignError::WhsecLength { len: 6 }),
        ("c2VjcmV0", SignError::MissingWhsecPrefix),
    ] {
        assert_eq!(
            StandardSecret::from_whsec(secret).map(|_| ()),
            Err(want),
            "{secret}"
        );
    }
    let message = SignError::WhsecLength { len: 6 }.to_string();
    assert!(message.contains("24 to 64"), "{message}");
}
