//! A whole request checked by a `Verifier`: both schemes, rotation, the timestamp tolerance,
//! repeated and missing headers; and the axum extractor through a real router.

use std::time::Duration;

use djinn_hook_sign::{
    RequestError, Secret, StandardSecret, Verifier, VerifyError, headers, sign, sign_standard,
};
use http::{HeaderMap, HeaderValue};

const BODY: &[u8] = br#"{"id":1}"#;
const NOW: i64 = 1_700_000_000;
const SECRET: &str = "It's a Secret to Everybody";

/// The headers a sender puts on a delivery signed with `secret`, with Standard Webhooks at
/// `timestamp` when asked.
fn signed(secret: &str, standard_at: Option<i64>) -> HeaderMap {
    let mut map = HeaderMap::new();
    let djinn = sign(&Secret::from(secret), BODY).to_header_value();
    map.insert(headers::SIGNATURE, HeaderValue::from_str(&djinn).unwrap());
    if let Some(timestamp) = standard_at {
        let key = StandardSecret::for_webhook_secret(secret).unwrap();
        let id = "6f1b2a9e-0c1d-4e5f-8a7b-9c0d1e2f3a4b";
        let value = sign_standard(&key, id, timestamp, BODY);
        map.insert(headers::WEBHOOK_ID, HeaderValue::from_static(id));
        map.insert(headers::WEBHOOK_TIMESTAMP, timestamp.into());
        map.insert(
            headers::WEBHOOK_SIGNATURE,
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    map
}

fn verifier() -> Verifier {
    Verifier::new(SECRET).unwrap()
}

#[test]
fn a_delivery_signed_either_way_or_both_verifies_and_says_which() {
    let both = verifier()
        .verify_at(&signed(SECRET, Some(NOW)), BODY, NOW)
        .unwrap();
    assert!(both.djinn_signature && both.standard_signature);
    let djinn_only = verifier()
        .verify_at(&signed(SECRET, None), BODY, NOW)
        .unwrap();
    assert!(djinn_only.djinn_signature && !djinn_only.standard_signature);

    let mut standard_only = signed(SECRET, Some(NOW));
    standard_only.remove(headers::SIGNATURE);
    let got = verifier().verify_at(&standard_only, BODY, NOW).unwrap();
    assert!(!got.djinn_signature && got.standard_signature);
}

#[test]
fn a_whsec_secret_gives_the_standard_key_its_decoded_bytes() {
    let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let request = signed(whsec, Some(NOW));
    assert!(
        Verifier::new(whsec)
            .unwrap()
            .verify_at(&request, BODY, NOW)
            .is_ok()
    );
    assert!(
        Verifier::new("whsec_!!!").is_err(),
        "an invalid whsec secret is refused"
    );
}

#[test]
fn a_tampered_body_or_another_secret_is_a_mismatch_naming_the_header() {
    let request = signed(SECRET, None);
    let err = verifier().verify_at(&request, b"{}", NOW).unwrap_err();
    assert_eq!(
        err,
        RequestError::Invalid {
            header: headers::SIGNATURE,
            source: VerifyError::Mismatch
        }
    );
    assert_eq!(
        err.to_string(),
        "the X-Djinn-CI-Signature header does not verify"
    );
    let other = Verifier::new("another").unwrap();
    assert!(other.verify_at(&request, BODY, NOW).is_err());
}

#[test]
fn every_scheme_present_must_verify_not_just_one() {
    // A valid Djinn signature does not excuse a forged Standard one.
    let mut request = signed(SECRET, Some(NOW));
    request.insert(
        headers::WEBHOOK_SIGNATURE,
        HeaderValue::from_static("v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="),
    );
    let err = verifier().verify_at(&request, BODY, NOW).unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Invalid {
                header: "webhook-signature",
                source: VerifyError::Mismatch
            }
        ),
        "{err:?}"
    );
}

#[test]
fn during_a_rotation_the_previous_secret_is_accepted_too() {
    let rotating = verifier().with_previous("the old one").unwrap();
    for secret in [SECRET, "the old one"] {
        assert!(
            rotating
                .verify_at(&signed(secret, Some(NOW)), BODY, NOW)
                .is_ok(),
            "{secret}"
        );
    }
    assert!(
        verifier()
            .verify_at(&signed("the old one", None), BODY, NOW)
            .is_err()
    );
}

#[test]
fn the_standard_timestamp_must_lie_within_the_tolerance() {
    let old = signed(SECRET, Some(NOW - 301));
    let err = verifier().verify_at(&old, BODY, NOW).unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Invalid {
                header: "webhook-timestamp",
                source: VerifyError::TimestampTooOld { .. }
            }
        ),
        "{err:?}"
    );
    let lenient = verifier().tolerance(Duration::from_secs(600));
    assert!(lenient.verify_at(&old, BODY, NOW).is_ok());
}

#[test]
fn missing_repeated_and_unsigned_requests_are_refused_by_name() {
    let check = |request: &HeaderMap, verifier: &Verifier| verifier.verify_at(request, BODY, NOW);

    assert_eq!(
        check(&HeaderMap::new(), &verifier()),
        Err(RequestError::Unsigned)
    );

    let mut partial = signed(SECRET, Some(NOW));
    partial.remove(headers::WEBHOOK_TIMESTAMP);
    assert_eq!(
        check(&partial, &verifier()),
        Err(RequestError::Missing {
            header: "webhook-timestamp"
        })
    );

    let required = verifier().require_standard();
    assert_eq!(
        check(&signed(SECRET, None), &required),
        Err(RequestError::Missing {
            header: "webhook-id"
        })
    );
    let both = check(&signed(SECRET, Some(NOW)), &required)
        .map(|verified| (verified.djinn_signature, verified.standard_signature));
    assert_eq!(both, Ok((true, true)));

    let mut twice = signed(SECRET, None);
    let forged = HeaderValue::from_static(
        "sha256=0000000000000000000000000000000000000000000000000000000000000000",
    );
    twice.append(headers::SIGNATURE, forged);
    assert_eq!(
        check(&twice, &verifier()),
        Err(RequestError::Repeated {
            header: "X-Djinn-CI-Signature"
        })
    );

    let mut not_text = HeaderMap::new();
    not_text.insert(
        headers::SIGNATURE,
        HeaderValue::from_bytes(b"sha256=\xff").unwrap(),
    );
    assert_eq!(
        check(&not_text, &verifier()),
        Err(RequestError::NotText {
            header: "X-Djinn-CI-Signature"
        })
    );
}

#[test]
fn debug_shows_no_secret() {
    let shown = format!("{:?}", verifier().with_previous("hunter2").unwrap());
    assert!(
        !shown.contains(SECRET) && !shown.contains("hunter2"),
        "{shown}"
    );
    assert!(shown.contains("secrets: 2"), "{shown}");
}

#[cfg(feature = "axum")]
mod extractor {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::{Router, routing::post};
    use djinn_hook_sign::VerifiedDelivery;
    use tower::ServiceExt;

    use super::*;

    async fn hook(delivery: VerifiedDelivery) -> String {
        format!("{} bytes", delivery.body.len())
    }

    fn app() -> Router {
        Router::new()
            .route("/hook", post(hook))
            .with_state(verifier())
    }

    fn request(headers: HeaderMap, body: &'static [u8]) -> Request<Body> {
        let mut request = Request::post("/hook").body(Body::from(body)).unwrap();
        *request.headers_mut() = headers;
        request
    }

    async fn answer(request: Request<Body>) -> (StatusCode, String) {
        let response = app().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_verified_delivery_reaches_the_handler_and_a_forged_one_gets_401() {
        assert_eq!(
            answer(request(signed(SECRET, None), BODY)).await,
            (StatusCode::OK, "8 bytes".to_owned())
        );
        let (status, reason) = answer(request(signed(SECRET, None), b"{\"id\":2}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            reason,
            "the X-Djinn-CI-Signature header does not verify: signature does not match"
        );
        let (status, reason) = answer(request(HeaderMap::new(), BODY)).await;
        assert_eq!(
            (status, reason.as_str()),
            (
                StatusCode::UNAUTHORIZED,
                "the request carries no signature header"
            )
        );
    }
}
