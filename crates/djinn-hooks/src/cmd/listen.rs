//! `listen`: a receiver for people building integrations; prints each delivery and checks its
//! signature.

use djinn_hook_server::{Received, Receiver};
use djinn_hook_sign::Verifier;
use serde_json::Value;

use super::Global;
use crate::cli::ListenArgs;

/// Runs the receiver until SIGINT or SIGTERM.
pub(crate) fn run(global: &Global, args: &ListenArgs) -> anyhow::Result<()> {
    let Some(secret) = super::hook::secret(&args.secret)? else {
        super::invalid!("--secret or --secret-file is required: signatures are checked against it");
    };
    let stop = super::worker::stop_on_signal()?;
    // Both schemes, as the sender derives them from this secret.
    let verifier = match Verifier::new(&secret) {
        Ok(verifier) => verifier,
        Err(error) => super::invalid!("--secret: {error}"),
    };
    let receiver = Receiver::start(&args.listen, verifier)?;
    eprintln!(
        "listening on http://{} (204 on a valid signature, 401 otherwise); Ctrl-C stops",
        receiver.addr()
    );
    while let Some(received) = receiver.next_until(&stop) {
        if global.json {
            outln!("{}", serde_json::to_string(&json_line(&received))?);
        } else {
            outln!("{}", text_line(&received));
        }
    }
    Ok(())
}

/// One line for people: event, delivery id, signature check, payload summary.
fn text_line(received: &Received) -> String {
    let sig = match (received.signature(), received.signature_valid) {
        (_, true) => "signature ok",
        (None, false) => "signature missing",
        (Some(_), false) => "signature INVALID",
    };
    format!(
        "{}  {}  hook {}  {}  {}",
        received.event().unwrap_or("-"),
        received.delivery().unwrap_or("-"),
        received.hook_id().unwrap_or("-"),
        sig,
        summary(&received.body),
    )
}

/// The full delivery as one JSON line (the body parsed when it is JSON).
fn json_line(received: &Received) -> Value {
    let body = serde_json::from_slice::<Value>(&received.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&received.body).into_owned()));
    serde_json::json!({
        "event": received.event(),
        "delivery": received.delivery(),
        "hook_id": received.hook_id(),
        "signature_valid": received.signature_valid,
        "headers": received.headers.iter().map(|(n, v)| [n, v]).collect::<Vec<_>>(),
        "body": body,
    })
}

/// A compact description of a payload, e.g. `build #12 passed` or `created variable 7`.
pub(crate) fn summary(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return format!("{} bytes, not JSON", body.len());
    };
    let Some(object) = value.as_object() else {
        return "JSON, not an object".to_owned();
    };
    let str_of = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("?").to_owned();
    let num_of = |v: Option<&Value>| {
        v.and_then(Value::as_i64)
            .map_or_else(|| "?".to_owned(), |n| n.to_string())
    };
    if let Some(action) = object.get("action").and_then(Value::as_str) {
        let entity = object.iter().find(|(k, _)| *k != "action");
        return match entity {
            Some((key, entity)) => format!("{action} {key} {}", num_of(entity.get("id"))),
            None => action.to_owned(),
        };
    }
    if let Some(tags) = object.get("tags").and_then(Value::as_array)
        && let Some(build) = object.get("build")
    {
        let names: Vec<String> = tags.iter().map(|t| str_of(t.get("name"))).collect();
        return format!(
            "build #{} tagged {}",
            num_of(build.get("number")),
            names.join(",")
        );
    }
    if object.contains_key("status") && object.contains_key("number") {
        return format!(
            "build #{} {}",
            num_of(object.get("number")),
            str_of(object.get("status"))
        );
    }
    if let Some(invitee) = object.get("invitee") {
        let namespace = object.get("namespace").and_then(|n| n.get("path"));
        return format!(
            "invite of {} to {}",
            str_of(invitee.get("username")),
            str_of(namespace)
        );
    }
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    format!("{{{}}}", keys.join(", "))
}
