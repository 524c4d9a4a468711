//! `sign` and `verify`: the X-Djinn-CI-Signature of a body, computed or checked.

use djinn_hook_sign::{Secret, VerifyError};

use super::{Global, invalid, read_input};
use crate::cli::{SecretArgs, SignArgs, VerifyArgs};

/// `sign`: prints `sha256=<hex>` for the body.
pub(crate) fn sign(global: &Global, args: &SignArgs) -> anyhow::Result<()> {
    let secret = secret(&args.secret)?;
    let body = read_input(args.file.as_deref())?;
    let signature = djinn_hook_sign::sign(&secret, &body).to_header_value();
    if global.json {
        super::output::print_json(&serde_json::json!({ "signature": signature }))?;
    } else {
        outln!("{signature}");
    }
    Ok(())
}

/// `verify`: exit 0 on a match, 1 on a mismatch, 2 on a malformed signature value.
pub(crate) fn verify(global: &Global, args: &VerifyArgs) -> anyhow::Result<()> {
    let secret = secret(&args.secret)?;
    let body = read_input(args.file.as_deref())?;
    let result = djinn_hook_sign::verify(&secret, &body, &args.signature);
    if global.json {
        super::output::print_json(&serde_json::json!({ "valid": result.is_ok() }))?;
    }
    match result {
        Ok(()) => {
            if !global.json {
                outln!("signature ok");
            }
            Ok(())
        }
        Err(VerifyError::Mismatch) => anyhow::bail!("signature does not match"),
        Err(err) => invalid!("--signature: {err}"),
    }
}

/// The secret from `--secret` or `--secret-file`; one of them is required.
fn secret(args: &SecretArgs) -> anyhow::Result<Secret> {
    match super::hook::secret(args)? {
        Some(secret) => Ok(Secret::new(secret)),
        None => invalid!("--secret or --secret-file is required"),
    }
}
