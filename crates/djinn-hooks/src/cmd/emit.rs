//! `emit`: validate an event's payload (or a batch of events), store it, queue one delivery per
//! matching webhook.

use djinn_hook_payload::Payload;
use djinn_hook_server::batch::{self, BatchError, BatchLimits};
use djinn_hook_store::{Accepted, Error, NewEvent, check_idempotency_key};

use super::events::parse_event;
use super::store::{self, StoreResult as _};
use super::{Global, invalid, output, read_input};
use crate::cli::EmitArgs;
use crate::entity_json::{AcceptedJson, BatchAcceptedJson};

/// Runs `emit`: nothing is stored unless the event name and payload are valid and the
/// namespace exists; the store decides the last (`Store::accept_event`, the same rule as the
/// API's intake), this adds only a hint to its error.
pub(crate) fn run(global: &Global, args: &EmitArgs) -> anyhow::Result<()> {
    if let Some(file) = &args.batch {
        return run_batch(global, args, file);
    }
    let event = parse_event(args.event.as_deref().unwrap_or_default())?;
    if let Some(key) = &args.idempotency_key
        && let Err(reason) = check_idempotency_key(key)
    {
        invalid!("--idempotency-key: {reason}");
    }
    let bytes = read_input(args.payload.as_deref())?;
    let payload = match Payload::parse(event, &bytes) {
        Ok(payload) => payload,
        Err(err) => invalid!("invalid payload: {err}"),
    };
    let store = store::open(global)?;
    let mut new = NewEvent::new(args.namespace.clone(), event, payload.to_body());
    if let Some(key) = &args.idempotency_key {
        new = new.with_idempotency_key(key.clone(), args.idempotency_window);
    }
    let accepted = match store.accept_event(new) {
        Err(err @ Error::NamespaceNotFound { .. }) => anyhow::bail!(
            "{err}; nothing stored (a namespace comes into being with its first webhook: \
             hook create --namespace {} ...)",
            args.namespace
        ),
        other => other.or_fail()?,
    };
    if global.json {
        output::print_json(&AcceptedJson::new(event, &accepted))
    } else {
        outln!("{}", accepted_line(event, &accepted));
        Ok(())
    }
}

/// `event <id> (<type>) accepted: N webhooks matched`, and for a replay what it was.
fn accepted_line(event: djinn_hook_payload::EventType, accepted: &Accepted) -> String {
    format!(
        "event {} ({event}) accepted: {} webhook{} matched{}",
        accepted.event_id,
        accepted.matched,
        if accepted.matched == 1 { "" } else { "s" },
        if accepted.replayed {
            " (accepted before under its idempotency key: nothing new stored)"
        } else {
            ""
        }
    )
}

/// `emit --batch FILE`: every item checked, then all stored in one transaction, or none.
fn run_batch(global: &Global, args: &EmitArgs, file: &std::path::Path) -> anyhow::Result<()> {
    let stdin = file.as_os_str() == "-";
    let bytes = read_input((!stdin).then_some(file))?;
    // No limits of its own: the file is the operator's, and one transaction holds it all.
    let items = match batch::parse(&bytes, BatchLimits::new(usize::MAX, usize::MAX)) {
        Ok(items) => items,
        Err(BatchError::Invalid(problems)) => {
            let lines: Vec<String> = problems
                .iter()
                .map(|(path, message)| format!("  {path}: {message}"))
                .collect();
            invalid!("invalid batch, nothing stored:\n{}", lines.join("\n"));
        }
        Err(err) => invalid!("invalid batch, nothing stored: {err}"),
    };
    let types: Vec<_> = items.iter().map(|item| item.event).collect();
    let events: Vec<NewEvent> = items
        .into_iter()
        .map(|item| {
            let new = NewEvent::new(args.namespace.clone(), item.event, item.payload.to_body());
            match item.idempotency_key {
                Some(key) => new.with_idempotency_key(key, args.idempotency_window),
                None => new,
            }
        })
        .collect();
    let store = store::open(global)?;
    let accepted = match store.accept_events(events) {
        Err(err @ Error::NamespaceNotFound { .. }) => anyhow::bail!(
            "{err}; nothing stored (a namespace comes into being with its first webhook: \
             hook create --namespace {} ...)",
            args.namespace
        ),
        Err(err @ Error::IdempotencyConflict { index, .. }) => {
            anyhow::bail!("[{index}]: {err}; nothing of the batch stored")
        }
        other => other.or_fail()?,
    };
    if global.json {
        output::print_json(&BatchAcceptedJson::new(&types, &accepted))
    } else {
        for (event, accepted) in types.iter().zip(&accepted) {
            outln!("{}", accepted_line(*event, accepted));
        }
        Ok(())
    }
}
