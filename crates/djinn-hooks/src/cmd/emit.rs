//! `emit`: validate an event's payload, store it, queue one delivery per matching webhook.

use djinn_hook_payload::Payload;
use djinn_hook_store::{Error, NewEvent};

use super::events::parse_event;
use super::store::{self, StoreResult as _};
use super::{Global, invalid, output, read_input};
use crate::cli::EmitArgs;
use crate::entity_json::AcceptedJson;

/// Runs `emit`: nothing is stored unless the event name and payload are valid and the
/// namespace exists; the store decides the last (`Store::accept_event`, the same rule as the
/// API's intake), this adds only a hint to its error.
pub(crate) fn run(global: &Global, args: &EmitArgs) -> anyhow::Result<()> {
    let event = parse_event(&args.event)?;
    let bytes = read_input(args.payload.as_deref())?;
    let payload = match Payload::parse(event, &bytes) {
        Ok(payload) => payload,
        Err(err) => invalid!("invalid payload: {err}"),
    };
    let store = store::open(global)?;
    let accepted = match store.accept_event(NewEvent::new(
        args.namespace.clone(),
        event,
        payload.to_body(),
    )) {
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
        outln!(
            "event {} ({event}) accepted: {} webhook{} matched",
            accepted.event_id,
            accepted.matched,
            if accepted.matched == 1 { "" } else { "s" }
        );
        Ok(())
    }
}
