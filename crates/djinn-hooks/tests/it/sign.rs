//! `sign` and `verify`: the signature of a body, round trip and failure exit codes.

use crate::Env;

const BODY: &[u8] = br#"{"id":1,"status":"passed"}"#;

#[test]
fn sign_prints_the_header_value_and_verify_accepts_it() {
    let env = Env::new();
    let signature = env.run(&["sign", "--secret", "s3cret"], Some(BODY));
    let signature = signature.ok().trim().to_owned();
    assert!(signature.starts_with("sha256="), "{signature}");
    assert_eq!(signature.len(), "sha256=".len() + 64);

    // The same value as an independent HMAC-SHA256 (the test vector is computed by
    // `printf '%s' '{"id":1,"status":"passed"}' | openssl dgst -sha256 -hmac s3cret`).
    assert_eq!(
        signature,
        "sha256=26b4df2c10bd9a551c718f9cf2cae6756c08ea74393a9568c5f6c6c84e9344cc"
    );

    let file = env.path("body.json");
    std::fs::write(&file, BODY).unwrap();
    let run = env.run(
        &[
            "verify",
            "--secret",
            "s3cret",
            "--signature",
            &signature,
            file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.ok().trim(), "signature ok");
}

#[test]
fn verify_with_a_wrong_secret_exits_1() {
    let env = Env::new();
    let signature = env
        .run(&["sign", "--secret", "right"], Some(BODY))
        .ok()
        .trim()
        .to_owned();
    let run = env.run(
        &["verify", "--secret", "wrong", "--signature", &signature],
        Some(BODY),
    );
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(run.stderr.trim(), "djinn-hooks: signature does not match");
    assert_eq!(run.stdout, "");
}

#[test]
fn verify_with_a_malformed_signature_exits_2_naming_the_problem() {
    let env = Env::new();
    let run = env.run(
        &["verify", "--secret", "s", "--signature", "sha1=abcd"],
        Some(BODY),
    );
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr
            .contains("--signature: signature algorithm `sha1`"),
        "{}",
        run.stderr
    );
}
