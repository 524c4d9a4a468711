//! `events` and `example`: the event names, and each event's example payload.

use djinn_hook_payload::EventType;

use super::{Global, invalid, output};
use crate::cli::ExampleArgs;

/// `events`: one line per event, name and what it means.
pub(crate) fn list(global: &Global) -> anyhow::Result<()> {
    if global.json {
        let events: Vec<_> = EventType::ALL
            .iter()
            .map(|e| serde_json::json!({ "name": e.name(), "description": description(*e) }))
            .collect();
        return output::print_json(&events);
    }
    let width = EventType::ALL
        .iter()
        .map(|e| e.name().len())
        .max()
        .unwrap_or(0);
    for event in EventType::ALL {
        outln!("{:width$}  {}", event.name(), description(event));
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

/// What an event means, in one line.
pub(crate) fn description(event: EventType) -> &'static str {
    match event {
        EventType::BuildSubmitted => "a build was submitted (payload: the build)",
        EventType::BuildStarted => "a build started running (payload: the build)",
        EventType::BuildFinished => "a build reached a final status (payload: the build)",
        EventType::BuildTagged => "tags were added to a build after submission",
        EventType::InviteSent => "a user was invited to a namespace",
        EventType::InviteAccepted => "an invite was accepted",
        EventType::InviteRejected => "an invite was rejected",
        EventType::Namespaces => "a namespace was created, updated or deleted",
        EventType::Cron => "a cron job was created, updated or deleted",
        EventType::Images => "an image was created, updated or deleted",
        EventType::Objects => "an object was created, updated or deleted",
        EventType::Variables => "a variable was created, updated or deleted",
        EventType::SshKeys => "an SSH key was created, updated or deleted",
        EventType::BuildPinned => "a build was pinned (payload: the build)",
        EventType::BuildUnpinned => "a build was unpinned (payload: the build)",
        _ => "",
    }
}
