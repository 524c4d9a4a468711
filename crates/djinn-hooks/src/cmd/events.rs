//! `events` and `example`: the event names, and each event's example payload.

use djinn_hook_payload::EventType;

use super::{Global, invalid, output};
use crate::cli::ExampleArgs;

/// `events`: one line per event, its name and what it means (`EventType::description`).
pub(crate) fn list(global: &Global) -> anyhow::Result<()> {
    if global.json {
        let events: Vec<_> = EventType::ALL
            .iter()
            .map(|e| serde_json::json!({ "name": e.name(), "description": e.description() }))
            .collect();
        return output::print_json(&events);
    }
    let width = EventType::ALL
        .iter()
        .map(|e| e.name().len())
        .max()
        .unwrap_or(0);
    for event in EventType::ALL {
        outln!("{:width$}  {}", event.name(), event.description());
    }
    Ok(())
}

/// `example`: the example payload, the same bytes as `docs/examples/webhooks/<event>.json`.
pub(crate) fn example(args: &ExampleArgs) -> anyhow::Result<()> {
    let event = parse_event(&args.event)?;
    let payload = djinn_hook_payload::example_payload(event, args.api_server.trim_end_matches('/'));
    output::write_bytes(&payload.to_pretty());
    Ok(())
}

/// Reads an event name; an unknown one is invalid input naming the valid ones.
pub(crate) fn parse_event(name: &str) -> anyhow::Result<EventType> {
    match EventType::from_name(name) {
        Ok(event) => Ok(event),
        Err(err) => invalid!("{err}"),
    }
}
