//! Secrets never show in Debug, Display or error messages.

use djinn_hook_sign::{Secret, SignError, StandardSecret};

#[test]
fn secret_debug_and_display_are_redacted() {
    let secret = Secret::from("hunter2-is-my-password");
    assert_eq!(format!("{secret:?}"), "Secret(..)");
    assert_eq!(format!("{secret}"), "Secret(..)");
    assert_eq!(format!("{:?}", Secret::new([1u8, 2, 3])), "Secret(..)");
    assert_eq!(
        format!("{:?}", Secret::from(String::from("x"))),
        "Secret(..)"
    );
    // A struct holding one stays redacted too.
    #[derive(Debug)]
    #[allow(dead_code, reason = "only Debug reads the field")]
    struct Webhook {
        secret: Secret,
    }
    let shown = format!("{:?}", Webhook { secret });
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn standard_secret_debug_is_redacted() {
    let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let secret = StandardSecret::from_whsec(whsec).expect("valid whsec");
    let shown = format!("{secret:?} {:#?}", secret);
    assert_eq!(format!("{secret:?}"), "StandardSecret(..)");
    assert!(!shown.contains("MfKQ"), "{shown}");
}

#[test]
fn whsec_errors_do_not_quote_the_secret() {
    for (input, expected) in [
        (
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            SignError::MissingWhsecPrefix,
        ),
        (
            "whsec-MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            SignError::MissingWhsecPrefix,
        ),
        (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
            SignError::WhsecNotBase64,
        ),
        (
            "whsec_MfKQ9r8G-KYqrTwjUPD8ILPZIo2LaLaSw",
            SignError::WhsecNotBase64,
        ),
        (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw ",
            SignError::WhsecNotBase64,
        ),
        ("whsec_", SignError::EmptyWhsec),
    ] {
        let error = StandardSecret::from_whsec(input).unwrap_err();
        assert_eq!(error, expected, "input {input:?}");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("MfKQ") && !shown.contains('-'), "{shown}");
        assert!(std::error::Error::source(&error).is_none());
    }
}
