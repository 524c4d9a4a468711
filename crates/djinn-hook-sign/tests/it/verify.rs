//! Verifying Djinn CI signatures: tampering, wrong secrets, rotation.

use djinn_hook_sign::{Secret, Signature, VerifyError, sign, verify, verify_any};

const BODY: &[u8] = br#"{"id":42,"status":"passed","url":"https://api.djinn-ci.com/b/me/42"}"#;

fn header(secret: &str, body: &[u8]) -> String {
    sign(&Secret::from(secret), body).to_header_value()
}

#[test]
fn a_signed_body_verifies() {
    let secret = Secret::from("s3cret");
    let value = header("s3cret", BODY);
    assert!(value.starts_with("sha256=") && value.len() == 71, "{value}");
    assert_eq!(verify(&secret, BODY, &value), Ok(()));
    // Display, to_header_value and parse agree.
    let signature = sign(&secret, BODY);
    assert_eq!(signature.to_string(), value);
    let parsed: Signature = value.parse().expect("own output parses");
    assert_eq!(parsed.as_bytes(), signature.as_bytes());
    assert_eq!(
        Signature::from_bytes(*signature.as_bytes()).to_string(),
        value
    );
}

#[test]
fn empty_body_and_empty_secret_are_ordinary_inputs() {
    assert_eq!(verify(&Secret::from(""), b"", &header("", b"")), Ok(()));
    assert_eq!(
        verify(&Secret::from("x"), b"", &header("", b"")),
        Err(VerifyError::Mismatch)
    );
}

#[test]
fn tampered_body_is_a_mismatch() {
    let secret = Secret::from("s3cret");
    let value = header("s3cret", BODY);
    for index in [0, 1, BODY.len() / 2, BODY.len() - 1] {
        let mut body = BODY.to_vec();
        body[index] ^= 0x01;
        assert_eq!(
            verify(&secret, &body, &value),
            Err(VerifyError::Mismatch),
            "byte {index}"
        );
    }
    let longer = [BODY, b" "].concat();
    assert_eq!(verify(&secret, &longer, &value), Err(VerifyError::Mismatch));
    assert_eq!(
        verify(&secret, &BODY[..BODY.len() - 1], &value),
        Err(VerifyError::Mismatch)
    );
}

#[test]
fn tampered_signature_is_a_mismatch_at_every_digit() {
    let secret = Secret::from("s3cret");
    let value = header("s3cret", BODY);
    for position in 7..value.len() {
        let mut bytes = value.clone().into_bytes();
        bytes[position] = if bytes[position] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(bytes).expect("still ASCII");
        assert_eq!(
            verify(&secret, BODY, &tampered),
            Err(VerifyError::Mismatch),
            "digit {position}"
        );
    }
}

#[test]
fn wrong_secret_is_a_mismatch() {
    let value = header("s3cret", BODY);
    for wrong in ["s3creT", "s3cret ", "", "s3cre"] {
        assert_eq!(
            verify(&Secret::from(wrong), BODY, &value),
            Err(VerifyError::Mismatch)
        );
    }
}

#[test]
fn parse_errors_come_before_any_hmac() {
    let secret = Secret::from("s3cret");
    assert_eq!(
        verify(
            &secret,
            BODY,
            "sha1=a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"
        ),
        Err(VerifyError::UnsupportedAlgorithm {
            algorithm: "sha1".to_owned()
        })
    );
    assert_eq!(verify(&secret, BODY, ""), Err(VerifyError::Empty));
}

#[test]
fn rotation_accepts_either_secret_and_nothing_else() {
    let secrets = [Secret::from("new secret"), Secret::from("old secret")];
    assert_eq!(
        verify_any(&secrets, BODY, &header("new secret", BODY)),
        Ok(())
    );
    assert_eq!(
        verify_any(&secrets, BODY, &header("old secret", BODY)),
        Ok(())
    );
    assert_eq!(
        verify_any(&secrets, BODY, &header("older secret", BODY)),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        verify_any(&[], BODY, &header("new secret", BODY)),
        Err(VerifyError::NoSecrets)
    );
}

#[test]
fn mismatch_reveals_nothing() {
    let secret = Secret::from("s3cret");
    let right = sign(&secret, BODY).to_string();
    let error = verify(&secret, BODY, &header("other", BODY)).unwrap_err();
    let shown = format!("{error} {error:?}");
    assert_eq!(error.to_string(), "signature does not match");
    assert!(!shown.contains(&right[7..]), "{shown}");
    assert!(!shown.contains(&right[7..15]), "{shown}");
    assert!(std::error::Error::source(&error).is_none());
}
