//! RFC 4231 HMAC-SHA-256 test cases, from `tests/data/rfc4231.txt`.

use djinn_hook_sign::{Secret, VerifyError, sign, verify};

use crate::data;

#[test]
fn rfc4231_all_cases() {
    let cases = data::blocks("rfc4231.txt");
    let numbers: Vec<&str> = cases.iter().map(|case| case.field("case")).collect();
    assert_eq!(numbers, ["1", "2", "3", "4", "5", "6", "7"]);

    for case in &cases {
        let number = case.field("case");
        let secret = Secret::new(case.hex("key"));
        let data = case.hex("data");
        let expected = case.hex("hmac-sha-256");
        let signature = sign(&secret, &data);

        match case.get("truncate") {
            None => {
                assert_eq!(signature.as_bytes()[..], expected[..], "case {number}");
                let header = format!("sha256={}", case.field("hmac-sha-256"));
                assert_eq!(signature.to_header_value(), header, "case {number}");
                assert_eq!(verify(&secret, &data, &header), Ok(()), "case {number}");
                let upper = format!("sha256={}", case.field("hmac-sha-256").to_uppercase());
                assert_eq!(verify(&secret, &data, &upper), Ok(()), "case {number}");
            }
            Some(bytes) => {
                // The RFC publishes only a prefix of the output: our full tag must start with it,
                // and a truncated tag is never accepted as a signature.
                let bytes: usize = bytes.parse().expect("truncate is a byte count");
                assert_eq!(expected.len(), bytes, "case {number}");
                assert_eq!(signature.as_bytes()[..bytes], expected[..], "case {number}");
                let truncated = format!("sha256={}", case.field("hmac-sha-256"));
                assert_eq!(
                    verify(&secret, &data, &truncated),
                    Err(VerifyError::WrongLength { len: 2 * bytes }),
                    "case {number}"
                );
                assert_eq!(
                    verify(&secret, &data, &signature.to_header_value()),
                    Ok(()),
                    "case {number}"
                );
            }
        }
    }
}
