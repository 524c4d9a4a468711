//! Event names, bit values and the event set.

use djinn_hook_payload::{EventSet, EventType, UnknownEvent};

use crate::read_data;

/// The original's bit table (`tests/data/event-bits.txt`, "n name" a line):
/// every event's bit, in the original's order.
fn upstream_bits() -> Vec<(String, u32)> {
    read_data("event-bits.txt")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (n, name) = line.split_once(' ').expect("\"n name\"");
            (name.to_string(), n.parse().expect("a bit position"))
        })
        .collect()
}

#[test]
fn every_bit_matches_the_original() {
    let bits = upstream_bits();
    let ours: Vec<(String, u32)> = EventType::ALL
        .iter()
        .map(|event| (event.name().to_string(), event.bit().trailing_zeros()))
        .collect();
    assert_eq!(
        bits, ours,
        "the original's bit table against EventType::ALL"
    );
    for (name, n) in bits {
        let event = EventType::from_name(&name).unwrap();
        assert_eq!(event.bit(), 1 << n, "{name}");
        assert_eq!(
            EventSet::from_names([name.as_str()]).unwrap().mask(),
            1 << n,
            "{name}"
        );
    }
}

#[test]
fn names_round_trip() {
    for event in EventType::ALL {
        assert_eq!(EventType::from_name(event.name()), Ok(event));
        assert_eq!(event.name().parse::<EventType>(), Ok(event));
        assert_eq!(event.to_string(), event.name());
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(json, format!("\"{}\"", event.name()));
        assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), event);
        assert!(!event.description().is_empty());
    }
}

#[test]
fn unknown_name_is_named_and_valid_names_listed() {
    let error = EventType::from_name("build.exploded").unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown event \"build.exploded\", expected one of build.submitted, build.started, \
         build.finished, build.tagged, invite.sent, invite.accepted, invite.rejected, \
         namespaces, cron, images, objects, variables, ssh_keys, build.pinned, build.unpinned"
    );
    let error = EventSet::from_names(["cron", "Cron"]).unwrap_err();
    assert_eq!(
        error,
        UnknownEvent {
            name: "Cron".into()
        }
    );
    let error = serde_json::from_str::<EventSet>(r#"["cron", "nope"]"#).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("unknown event \"nope\", expected one of build.submitted")
    );
}

#[test]
fn from_mask_rejects_unknown_bits() {
    let error = EventSet::from_mask((1 << 15) | 1).unwrap_err();
    assert_eq!(error.name, "mask bits 0x8000");
    assert!(
        error
            .to_string()
            .starts_with("unknown event \"mask bits 0x8000\", expected one of")
    );
    assert!(EventSet::from_mask(1 << 63).is_err());
    assert_eq!(EventSet::from_mask(0x7fff).unwrap(), EventSet::all());
    assert_eq!(EventSet::from_mask(0).unwrap(), EventSet::empty());
}

#[test]
fn all_includes_invite_rejected_and_empty_list_means_all() {
    assert!(EventSet::all().contains(EventType::InviteRejected));
    assert_eq!(EventSet::all().mask(), 0x7fff);
    assert_eq!(
        EventSet::from_names(Vec::<&str>::new()).unwrap(),
        EventSet::all()
    );
    assert_eq!(EventSet::all().names().len(), 15);
}

#[test]
fn names_come_out_in_canonical_order() {
    let set = EventSet::from_names(["build.unpinned", "cron", "build.submitted"]).unwrap();
    assert_eq!(set.names(), ["build.submitted", "cron", "build.unpinned"]);
    assert!(set.contains(EventType::Cron));
    assert!(!set.contains(EventType::Images));
    assert_eq!(set.mask(), (1 << 0) | (1 << 8) | (1 << 14));
    assert_eq!(
        serde_json::to_string(&set).unwrap(),
        r#"["build.submitted","cron","build.unpinned"]"#
    );
    assert_eq!(
        format!("{set:?}"),
        r#"{"build.submitted", "cron", "build.unpinned"}"#
    );
}
