//! The payload of each event, the [`Payload`] enum over all of them, and the one
//! entry point that reads a body: [`Payload::parse`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};

use crate::entity::{
    Build, BuildStatus, Cron, Extra, Image, Key, Namespace, Object, Tag, User, Variable,
};
use crate::error::PayloadError;
use crate::event::EventType;
use crate::notification::Notification;
use crate::wire::wire_enum;

wire_enum! {
    /// What happened to the entity of a `namespaces`, `cron`, `images`,
    /// `objects`, `variables` or `ssh_keys` event.
    #[non_exhaustive]
    pub enum Action {
        /// The entity was created.
        Created = "created",
        /// The entity was updated.
        Updated = "updated",
        /// The entity was deleted.
        Deleted = "deleted",
    }
}

/// The payload of `build.tagged`: tags added to a build after submission.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct BuildTagged {
    /// The build that was tagged, its `tags` already including the new ones.
    pub build: Build,
    /// The tags that were added.
    pub tags: Vec<Tag>,
    /// API URL of the build's tags (`/b/:username/:number/tags`). The original
    /// wrongly sent the build object here; a body doing so is rejected.
    pub url: String,
    /// The user who added the tags.
    pub user: User,
    /// Keys this version does not know, with their values (see the crate docs).
    #[serde(flatten)]
    pub extra: Extra,
}

/// The payload of `invite.sent`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct InviteSent {
    /// The user who was invited.
    pub invitee: User,
    /// The user who sent the invite.
    pub inviter: User,
    /// The namespace the invite is for.
    pub namespace: Namespace,
    /// Keys this version does not know, with their values (see the crate docs).
    #[serde(flatten)]
    pub extra: Extra,
}

/// The payload of `invite.accepted` and `invite.rejected`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct InviteAnswered {
    /// The user who was invited and answered.
    pub invitee: User,
    /// The namespace the invite was for.
    pub namespace: Namespace,
    /// Keys this version does not know, with their values (see the crate docs).
    #[serde(flatten)]
    pub extra: Extra,
}

/// Defines an `{action, <entity>}` payload struct.
macro_rules! change_payload {
    ($(#[$meta:meta])* $name:ident { $field:ident: $ty:ty, $doc:literal }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
        pub struct $name {
            /// What happened to the entity.
            pub action: Action,
            #[doc = $doc]
            pub $field: $ty,
            /// Keys this version does not know, with their values (see the crate docs).
            #[serde(flatten)]
            pub extra: Extra,
        }
    };
}

change_payload! {
    /// The payload of `namespaces`: `{action, namespace}`.
    NamespaceChange { namespace: Namespace, "The namespace (for `created`, always a child namespace)." }
}
change_payload! {
    /// The payload of `cron`: `{action, cron}`.
    CronChange { cron: Cron, "The cron job." }
}
change_payload! {
    /// The payload of `images`: `{action, image}`.
    ImageChange { image: Image, "The image." }
}
change_payload! {
    /// The payload of `objects`: `{action, object}`.
    ObjectChange { object: Object, "The object." }
}
change_payload! {
    /// The payload of `variables`: `{action, variable}`.
    VariableChange { variable: Variable, "The variable." }
}
change_payload! {
    /// The payload of `ssh_keys`: `{action, key}` (the key is `key`, as the
    /// original's code sends, not `ssh_key` as its docs table says).
    KeyChange { key: Key, "The SSH key." }
}

/// The payload of one event, keyed by event type.
///
/// Serialises as the bare payload object (no tag): the event name travels in
/// the `X-Djinn-CI-Event` header, not in the body.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Payload {
    /// `build.submitted`: the build, queued.
    BuildSubmitted(Build),
    /// `build.started`: the build, with `started_at` set.
    BuildStarted(Build),
    /// `build.finished`: the build, with a final status and `finished_at` set.
    BuildFinished(Build),
    /// `build.tagged`: the build and the tags added to it.
    BuildTagged(BuildTagged),
    /// `build.pinned`: the build, with `pinned` true.
    BuildPinned(Build),
    /// `build.unpinned`: the build, with `pinned` false.
    BuildUnpinned(Build),
    /// `invite.sent`.
    InviteSent(InviteSent),
    /// `invite.accepted`.
    InviteAccepted(InviteAnswered),
    /// `invite.rejected`.
    InviteRejected(InviteAnswered),
    /// `namespaces`.
    Namespaces(NamespaceChange),
    /// `cron`.
    Cron(CronChange),
    /// `images`.
    Images(ImageChange),
    /// `objects`.
    Objects(ObjectChange),
    /// `variables`.
    Variables(VariableChange),
    /// `ssh_keys`.
    SshKeys(KeyChange),
    /// `notification` (to the operator, about djinn-hooks itself).
    Notification(Notification),
}

impl Payload {
    /// Reads the body of an `event` delivery: the typed payload, or an error
    /// naming the event, the JSON path of the bad value and what was expected,
    /// e.g. `build.finished: status: unknown variant "done", expected one of
    /// queued, running, ...`.
    ///
    /// Unknown fields are accepted and kept (see the crate docs); the rules of
    /// [`Payload::validate`] are checked.
    pub fn parse(event: EventType, json: &[u8]) -> Result<Payload, PayloadError> {
        let payload = match event {
            EventType::BuildSubmitted => Payload::BuildSubmitted(decode(event, json)?),
            EventType::BuildStarted => Payload::BuildStarted(decode(event, json)?),
            EventType::BuildFinished => Payload::BuildFinished(decode(event, json)?),
            EventType::BuildTagged => Payload::BuildTagged(decode(event, json)?),
            EventType::BuildPinned => Payload::BuildPinned(decode(event, json)?),
            EventType::BuildUnpinned => Payload::BuildUnpinned(decode(event, json)?),
            EventType::InviteSent => Payload::InviteSent(decode(event, json)?),
            EventType::InviteAccepted => Payload::InviteAccepted(decode(event, json)?),
            EventType::InviteRejected => Payload::InviteRejected(decode(event, json)?),
            EventType::Namespaces => Payload::Namespaces(decode(event, json)?),
            EventType::Cron => Payload::Cron(decode(event, json)?),
            EventType::Images => Payload::Images(decode(event, json)?),
            EventType::Objects => Payload::Objects(decode(event, json)?),
            EventType::Variables => Payload::Variables(decode(event, json)?),
            EventType::SshKeys => Payload::SshKeys(decode(event, json)?),
            EventType::Notification => Payload::Notification(decode(event, json)?),
        };
        payload.validate()?;
        Ok(payload)
    }

    /// The event this payload is for.
    pub fn event_type(&self) -> EventType {
        match self {
            Payload::BuildSubmitted(_) => EventType::BuildSubmitted,
            Payload::BuildStarted(_) => EventType::BuildStarted,
            Payload::BuildFinished(_) => EventType::BuildFinished,
            Payload::BuildTagged(_) => EventType::BuildTagged,
            Payload::BuildPinned(_) => EventType::BuildPinned,
            Payload::BuildUnpinned(_) => EventType::BuildUnpinned,
            Payload::InviteSent(_) => EventType::InviteSent,
            Payload::InviteAccepted(_) => EventType::InviteAccepted,
            Payload::InviteRejected(_) => EventType::InviteRejected,
            Payload::Namespaces(_) => EventType::Namespaces,
            Payload::Cron(_) => EventType::Cron,
            Payload::Images(_) => EventType::Images,
            Payload::Objects(_) => EventType::Objects,
            Payload::Variables(_) => EventType::Variables,
            Payload::SshKeys(_) => EventType::SshKeys,
            Payload::Notification(_) => EventType::Notification,
        }
    }

    /// The build, for the `build.*` events (the tagged build for `build.tagged`).
    pub fn build(&self) -> Option<&Build> {
        match self {
            Payload::BuildSubmitted(build)
            | Payload::BuildStarted(build)
            | Payload::BuildFinished(build)
            | Payload::BuildPinned(build)
            | Payload::BuildUnpinned(build) => Some(build),
            Payload::BuildTagged(tagged) => Some(&tagged.build),
            _ => None,
        }
    }

    /// Checks the rules of the event that the types alone cannot express.
    /// [`Payload::parse`] applies them; call this on a payload built by hand
    /// before sending it. The rules, each clear in the original's contract:
    ///
    /// - `build.started`: `started_at` is set;
    /// - `build.finished`: `status` is final (passed, passed_with_failures,
    ///   failed, killed, timed_out) and `finished_at` is set;
    /// - `build.pinned`: `pinned` is true; `build.unpinned`: `pinned` is false.
    ///
    /// Deliberately not checked: the status of submitted/started builds (a
    /// relayed event may be read after the build moved on), URL shapes, and
    /// consistency between IDs and nested objects.
    pub fn validate(&self) -> Result<(), PayloadError> {
        let event = self.event_type();
        let rule = |path, message: String| {
            Err(PayloadError::Rule {
                event,
                path,
                message,
            })
        };
        match self {
            Payload::BuildStarted(build) if build.started_at.is_none() => rule(
                "started_at",
                "is null, expected the time the build started".into(),
            ),
            Payload::BuildFinished(build) if !build.status.is_final() => rule(
                "status",
                format!(
                    "{:?} is not a final status, expected one of {}",
                    build.status.name(),
                    final_status_names()
                ),
            ),
            Payload::BuildFinished(build) if build.finished_at.is_none() => rule(
                "finished_at",
                "is null, expected the time the build finished".into(),
            ),
            Payload::BuildPinned(build) if !build.pinned => {
                rule("pinned", "is false, expected true for build.pinned".into())
            }
            Payload::BuildUnpinned(build) if build.pinned => rule(
                "pinned",
                "is true, expected false for build.unpinned".into(),
            ),
            _ => Ok(()),
        }
    }

    /// The exact body bytes to send and sign: compact JSON, keys in struct
    /// field order (unknown kept fields last, sorted), no trailing newline.
    /// Deterministic: the same payload always gives the same bytes.
    ///
    /// # Panics
    ///
    /// If a timestamp cannot be written as RFC 3339 (a year outside 0000-9999 or
    /// an offset with seconds). A parsed payload never has one.
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("payload timestamps are valid RFC 3339 dates")
    }

    /// The payload as pretty JSON (two-space indent) with a trailing newline,
    /// as written to fixture files. Not the signed body: see [`Payload::to_body`].
    ///
    /// # Panics
    ///
    /// As [`Payload::to_body`].
    pub fn to_pretty(&self) -> Vec<u8> {
        let mut out =
            serde_json::to_vec_pretty(self).expect("payload timestamps are valid RFC 3339 dates");
        out.push(b'\n');
        out
    }
}

/// Serialises the bare payload object; see [`Payload`].
impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Payload::BuildSubmitted(p)
            | Payload::BuildStarted(p)
            | Payload::BuildFinished(p)
            | Payload::BuildPinned(p)
            | Payload::BuildUnpinned(p) => p.serialize(serializer),
            Payload::BuildTagged(p) => p.serialize(serializer),
            Payload::InviteSent(p) => p.serialize(serializer),
            Payload::InviteAccepted(p) | Payload::InviteRejected(p) => p.serialize(serializer),
            Payload::Namespaces(p) => p.serialize(serializer),
            Payload::Cron(p) => p.serialize(serializer),
            Payload::Images(p) => p.serialize(serializer),
            Payload::Objects(p) => p.serialize(serializer),
            Payload::Variables(p) => p.serialize(serializer),
            Payload::SshKeys(p) => p.serialize(serializer),
            Payload::Notification(p) => p.serialize(serializer),
        }
    }
}

fn final_status_names() -> String {
    let names: Vec<&str> = BuildStatus::FINAL.iter().map(|s| s.name()).collect();
    names.join(", ")
}

/// Reads one JSON document from `json`, tracking the path of any error.
///
/// A valid payload is read once with plain serde_json; only an invalid one is read again with
/// the path tracked (the same deserializer with a wrapper around every value, which the
/// intake paid on every event: half of `serve`'s instructions for a valid one). Both reads
/// accept exactly the same documents: the wrapper only records where it is.
fn decode<T: DeserializeOwned>(event: EventType, json: &[u8]) -> Result<T, PayloadError> {
    match serde_json::from_slice(json) {
        Ok(value) => Ok(value),
        Err(_) => decode_tracked(event, json),
    }
}

/// [`decode`] with the path of the error tracked, for the message.
fn decode_tracked<T: DeserializeOwned>(event: EventType, json: &[u8]) -> Result<T, PayloadError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|error| {
        let path = error.path().to_string();
        let path = if path == "." { String::new() } else { path };
        PayloadError::from_json(event, path, error.inner())
    })?;
    de.end()
        .map_err(|error| PayloadError::from_json(event, String::new(), &error))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DEFAULT_API_SERVER, example_payload};

    /// The fast read and the tracked one agree on every example and on documents each wrong
    /// in another way: the fast read is only an optimisation of the tracked one.
    #[test]
    fn plain_and_tracked_reads_agree() {
        for event in EventType::ALL {
            let body = example_payload(event, DEFAULT_API_SERVER).to_body();
            let text = String::from_utf8(body.clone()).unwrap();
            let documents = vec![
                body,
                b"{}".to_vec(),
                b"[]".to_vec(),
                b"{\"id\": \"x\"}".to_vec(),
                format!("{text} trailing").into_bytes(),
                text.replacen(':', ": 17, \"x\":", 1).into_bytes(),
                text.as_bytes()[..text.len() / 2].to_vec(),
                text.replacen('"', "'", 1).into_bytes(),
            ];
            for json in documents {
                let plain = Payload::parse(event, &json);
                let tracked = tracked_parse(event, &json);
                assert_eq!(
                    plain,
                    tracked,
                    "{event:?}: {}",
                    String::from_utf8_lossy(&json)
                );
            }
        }
    }

    /// [`Payload::parse`] as it was, with every document read tracked.
    fn tracked_parse(event: EventType, json: &[u8]) -> Result<Payload, PayloadError> {
        macro_rules! each {
            ($($variant:ident),*) => {
                match event {
                    $(EventType::$variant => Payload::$variant(decode_tracked(event, json)?),)*
                }
            };
        }
        let payload = each!(
            BuildSubmitted,
            BuildStarted,
            BuildFinished,
            BuildTagged,
            BuildPinned,
            BuildUnpinned,
            InviteSent,
            InviteAccepted,
            InviteRejected,
            Namespaces,
            Cron,
            Images,
            Objects,
            Variables,
            SshKeys,
            Notification
        );
        payload.validate()?;
        Ok(payload)
    }
}
