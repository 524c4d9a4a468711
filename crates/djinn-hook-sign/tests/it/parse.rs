//! Every way a `X-Djinn-CI-Signature` value can be malformed, and the error it gets.

use djinn_hook_sign::{Signature, VerifyError};

const HEX: &str = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";

#[track_caller]
fn check(input: &str, expected: Result<&str, VerifyError>) {
    let parsed = input.parse::<Signature>().map(|s| s.to_string());
    assert_eq!(parsed, expected.map(str::to_owned), "input {input:?}");
}

#[test]
fn well_formed() {
    let lower = format!("sha256={HEX}");
    check(&lower, Ok(&lower));
    // Either case on input; always lowercase on output.
    check(&format!("sha256={}", HEX.to_uppercase()), Ok(&lower));
    check(
        "sha256=0000000000000000000000000000000000000000000000000000000000000000",
        Ok("sha256=0000000000000000000000000000000000000000000000000000000000000000"),
    );
}

#[test]
fn empty_and_whitespace() {
    check("", Err(VerifyError::Empty));
    for input in [
        format!(" sha256={HEX}"),
        format!("sha256={HEX} "),
        format!("sha256={HEX}\n"),
        format!("\tsha256={HEX}"),
        "   ".to_owned(),
    ] {
        check(&input, Err(VerifyError::SurroundingWhitespace));
    }
}

#[test]
fn missing_prefix() {
    for input in [
        HEX,
        "=abc",
        "sha256",
        "sha256:abc",
        "hello world",
        "\"sha256\"=abc",
    ] {
        check(input, Err(VerifyError::MissingPrefix));
    }
}

#[test]
fn other_algorithm() {
    let sha1 = "sha1=a94a8fe5ccb19ba61c4c0873d391e987982fbbd3";
    for (input, algorithm) in [
        (sha1, "sha1"),
        ("sha512=abcd", "sha512"),
        ("SHA256=abcd", "SHA256"),
        ("hmac-sha256=abcd", "hmac-sha256"),
        ("md5=", "md5"),
    ] {
        check(
            input,
            Err(VerifyError::UnsupportedAlgorithm {
                algorithm: algorithm.to_owned(),
            }),
        );
    }
}

#[test]
fn leading_garbage() {
    for (input, len) in [
        (format!("X-Djinn-CI-Signature: sha256={HEX}"), 22),
        (format!("\"sha256={HEX}\""), 1),
        (format!("v1,sha256={HEX}"), 3),
    ] {
        check(&input, Err(VerifyError::LeadingGarbage { len }));
    }
}

#[test]
fn wrong_length() {
    for len in [0, 1, 32, 40, 63, 65, 128] {
        let digits: String = HEX.chars().cycle().take(len).collect();
        check(
            &format!("sha256={digits}"),
            Err(VerifyError::WrongLength { len }),
        );
    }
}

#[test]
fn non_hex_characters() {
    for (position, found) in [
        (0, 'g'),
        (30, 'x'),
        (63, 'Z'),
        (10, ' '),
        (5, 'é'),
        (1, '='),
    ] {
        let mut digits: Vec<char> = HEX.chars().collect();
        digits[position] = found;
        let digits: String = digits.into_iter().collect();
        check(
            &format!("sha256={digits}"),
            Err(VerifyError::InvalidHexChar {
                position: 7 + position,
                found,
            }),
        );
    }
    // Too short and non-hex: the bad character is the more precise report.
    check(
        "sha256=abc-def",
        Err(VerifyError::InvalidHexChar {
            position: 10,
            found: '-',
        }),
    );
}

#[test]
fn trailing_garbage() {
    for (suffix, len) in [
        ("\"", 1),
        (",sha1=a94a8fe5ccb19ba61c4c0873d391e987982fbbd3", 46),
        (" sha256=00", 10),
        ("g", 1),
    ] {
        check(
            &format!("sha256={HEX}{suffix}"),
            Err(VerifyError::TrailingGarbage { len }),
        );
    }
}

#[test]
fn messages_name_the_problem() {
    let message = |input: &str| input.parse::<Signature>().unwrap_err().to_string();
    assert_eq!(
        message("sha1=abc"),
        "signature algorithm `sha1` is not supported, expected `sha256`"
    );
    assert_eq!(
        message("sha256=abc"),
        "signature has 3 hex digits after `sha256=`, expected 64"
    );
    assert_eq!(
        message("sha256=abq"),
        "signature has non-hex character 'q' at byte 9 of the header"
    );
    assert_eq!(message(HEX), "signature header lacks the `sha256=` prefix");
}
