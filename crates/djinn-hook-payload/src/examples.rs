//! Example payloads for every event, telling one consistent story: Wallace
//! Breen owns the namespace `blackmesa`, invites Gordon Freeman, and Gordon's
//! build #1 is submitted, started, finished, tagged, pinned and unpinned.
//!
//! These feed `docs/examples/` (through `cargo xtask fixtures`), the snapshot
//! tests and anyone needing a realistic payload. All URLs are built from the
//! API server's base URL with the original's URL shapes.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use time::macros::datetime;

use crate::entity::{
    Build, BuildStatus, Cron, Download, Driver, Extra, Image, Key, Namespace, Object, Schedule,
    Tag, Trigger, TriggerType, User, Variable, Visibility,
};
use crate::event::EventType;
use crate::notification::Notification;
use crate::payload::{
    Action, BuildTagged, CronChange, ImageChange, InviteAnswered, InviteSent, KeyChange,
    NamespaceChange, ObjectChange, Payload, VariableChange,
};

/// The API server of the hosted Djinn CI, the default base of example URLs.
pub const DEFAULT_API_SERVER: &str = "https://api.djinn-ci.com";

/// The example payload of `event`, its URLs built on `api_server` (e.g.
/// [`DEFAULT_API_SERVER`]; a trailing `/` is ignored).
///
/// The examples are consistent with each other: the same users, namespace and
/// build, in the states each event implies (`build.finished` is `passed` with
/// `finished_at` set, `build.pinned` has `pinned` true, and so on). Each one
/// passes [`Payload::validate`].
pub fn example_payload(event: EventType, api_server: &str) -> Payload {
    let world = World::new(api_server);
    match event {
        EventType::BuildSubmitted => Payload::BuildSubmitted(world.build(Stage::Submitted)),
        EventType::BuildStarted => Payload::BuildStarted(world.build(Stage::Started)),
        EventType::BuildFinished => Payload::BuildFinished(world.build(Stage::Finished)),
        EventType::BuildTagged => Payload::BuildTagged(BuildTagged {
            build: world.build(Stage::Tagged),
            tags: vec![Tag {
                name: "release".to_owned(),
                url: world.build_url("/tags/release"),
                extra: Extra::new(),
            }],
            url: world.build_url("/tags"),
            user: world.gordon(),
            extra: Extra::new(),
        }),
        EventType::BuildPinned => Payload::BuildPinned(world.build(Stage::Pinned)),
        EventType::BuildUnpinned => Payload::BuildUnpinned(world.build(Stage::Unpinned)),
        EventType::InviteSent => Payload::InviteSent(InviteSent {
            invitee: world.gordon(),
            inviter: world.wallace(),
            namespace: world.blackmesa(),
            extra: Extra::new(),
        }),
        EventType::InviteAccepted => Payload::InviteAccepted(world.invite_answered()),
        EventType::InviteRejected => Payload::InviteRejected(world.invite_answered()),
        EventType::Namespaces => Payload::Namespaces(NamespaceChange {
            action: Action::Created,
            namespace: world.lambda(),
            extra: Extra::new(),
        }),
        EventType::Cron => Payload::Cron(CronChange {
            action: Action::Created,
            cron: world.cron(),
            extra: Extra::new(),
        }),
        EventType::Images => Payload::Images(ImageChange {
            action: Action::Created,
            image: world.image(),
            extra: Extra::new(),
        }),
        EventType::Objects => Payload::Objects(ObjectChange {
            action: Action::Created,
            object: world.object(),
            extra: Extra::new(),
        }),
        EventType::Variables => Payload::Variables(VariableChange {
            action: Action::Created,
            variable: world.variable(),
            extra: Extra::new(),
        }),
        EventType::SshKeys => Payload::SshKeys(KeyChange {
            action: Action::Created,
            key: world.key(),
            extra: Extra::new(),
        }),
        EventType::Notification => Payload::Notification(world.notification()),
    }
}

/// The example build as the API's `GET /b/:username/:number` returns it: the
/// same build as the webhook examples, in its latest state (finished, tagged,
/// unpinned).
pub fn example_api_build(api_server: &str) -> Build {
    World::new(api_server).build(Stage::Unpinned)
}

/// How far the example build has come; each stage includes the earlier ones.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Submitted,
    Started,
    Finished,
    Tagged,
    Pinned,
    Unpinned,
}

const MANIFEST: &str = "namespace: blackmesa@wallace.breen\ndriver:\n  image: golang\n  type: docker\n  workspace: /go\nstages:\n- test\njobs:\n- stage: test\n  commands:\n  - go test ./...";
const BUILD_CREATED: OffsetDateTime = datetime!(2021-10-06 18:14:33 UTC);
const BUILD_STARTED: OffsetDateTime = datetime!(2021-10-06 18:14:35 UTC);
const BUILD_FINISHED: OffsetDateTime = datetime!(2021-10-06 18:16:02 UTC);
const CREATED: OffsetDateTime = datetime!(2021-10-07 20:21:28 UTC);

struct World {
    base: String,
}

impl World {
    /// A webhook of the example namespace disabled after its receiver answered 410.
    fn notification(&self) -> Notification {
        let details = serde_json::json!({
            "webhook": {
                "id": 1,
                "namespace": "me/djinn",
                "url": "https://hooks.example.com/djinn",
            },
            "reason": "the receiver answered 410 Gone",
            "disabled_at": "2021-10-07T20:21:28Z",
            "failing_since": "2021-10-07T20:21:28Z",
        });
        let serde_json::Value::Object(details) = details else {
            unreachable!("a JSON object literal")
        };
        Notification::new("webhook.disabled", CREATED, details)
    }

    fn new(api_server: &str) -> World {
        World {
            base: api_server.trim_end_matches('/').to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn build_url(&self, suffix: &str) -> String {
        self.url(&format!("/b/wallace.breen/1{suffix}"))
    }

    fn wallace(&self) -> User {
        User {
            id: 3,
            email: "wallace.breen@black-mesa.com".to_owned(),
            username: "wallace.breen".to_owned(),
            created_at: datetime!(2021-10-02 13:10:14 UTC),
            extra: Extra::new(),
        }
    }

    fn gordon(&self) -> User {
        User {
            id: 1,
            email: "gordon.freeman@black-mesa.com".to_owned(),
            username: "gordon.freeman".to_owned(),
            created_at: datetime!(2021-10-02 13:32:09 UTC),
            extra: Extra::new(),
        }
    }

    fn namespace(
        &self,
        id: i64,
        path: &str,
        description: &str,
        parent: Option<Namespace>,
    ) -> Namespace {
        let url = self.url(&format!("/n/wallace.breen/{path}"));
        let sub = |name: &str| format!("{url}/-/{name}");
        Namespace {
            id,
            user_id: 3,
            root_id: 4,
            parent_id: parent.as_ref().map(|parent| parent.id),
            name: path.rsplit('/').next().unwrap_or(path).to_owned(),
            path: path.to_owned(),
            description: description.to_owned(),
            visibility: Visibility::Private,
            created_at: if parent.is_some() {
                datetime!(2021-10-07 09:30:00 UTC)
            } else {
                datetime!(2021-10-02 13:10:15 UTC)
            },
            builds_url: sub("builds"),
            namespaces_url: sub("namespaces"),
            images_url: sub("images"),
            objects_url: sub("objects"),
            variables_url: sub("variables"),
            keys_url: sub("keys"),
            invites_url: sub("invites"),
            collaborators_url: sub("collaborators"),
            webhooks_url: sub("webhooks"),
            url,
            user: self.wallace(),
            parent: parent.map(Box::new),
            build: None,
            extra: Extra::new(),
        }
    }

    /// The root namespace everything happens in.
    fn blackmesa(&self) -> Namespace {
        self.namespace(4, "blackmesa", "Black Mesa", None)
    }

    /// A child namespace of `blackmesa` (creation events are only sent for children).
    fn lambda(&self) -> Namespace {
        self.namespace(
            5,
            "blackmesa/lambda",
            "Lambda Complex",
            Some(self.blackmesa()),
        )
    }

    fn build(&self, stage: Stage) -> Build {
        let mut tags = vec!["docker".to_owned(), "golang".to_owned()];
        if stage >= Stage::Tagged {
            tags.push("release".to_owned());
        }
        let submitter = self.gordon();
        Build {
            id: 4,
            user_id: 3,
            namespace_id: Some(4),
            number: 1,
            manifest: MANIFEST.to_owned(),
            status: match stage {
                Stage::Submitted => BuildStatus::Queued,
                Stage::Started => BuildStatus::Running,
                _ => BuildStatus::Passed,
            },
            output: (stage >= Stage::Finished)
                .then(|| "ok  \tblackmesa/resonance\t0.012s\n".to_owned()),
            tags,
            pinned: stage == Stage::Pinned,
            created_at: BUILD_CREATED,
            started_at: (stage >= Stage::Started).then_some(BUILD_STARTED),
            finished_at: (stage >= Stage::Finished).then_some(BUILD_FINISHED),
            url: self.build_url(""),
            objects_url: self.build_url("/objects"),
            variables_url: self.build_url("/variables"),
            jobs_url: self.build_url("/jobs"),
            artifacts_url: self.build_url("/artifacts"),
            tags_url: self.build_url("/tags"),
            trigger: Some(Trigger {
                kind: TriggerType::Manual,
                comment: "Manual build submission".to_owned(),
                data: BTreeMap::from([
                    ("email".to_owned(), submitter.email),
                    ("username".to_owned(), submitter.username),
                ]),
                extra: Extra::new(),
            }),
            user: Some(self.wallace()),
            namespace: Some(Box::new(self.blackmesa())),
            extra: Extra::new(),
        }
    }

    fn invite_answered(&self) -> InviteAnswered {
        InviteAnswered {
            invitee: self.gordon(),
            namespace: self.blackmesa(),
            extra: Extra::new(),
        }
    }

    fn cron(&self) -> Cron {
        Cron {
            id: 1,
            author_id: 3,
            user_id: 3,
            namespace_id: Some(4),
            name: "nightly".to_owned(),
            schedule: Schedule::Daily,
            manifest: MANIFEST.to_owned(),
            prev_run: None,
            next_run: datetime!(2021-10-08 00:00:00 UTC),
            created_at: CREATED,
            url: self.url("/cron/1"),
            author: self.wallace(),
            user: self.wallace(),
            namespace: Some(self.blackmesa()),
            extra: Extra::new(),
        }
    }

    fn image(&self) -> Image {
        Image {
            id: 1,
            author_id: 3,
            user_id: 3,
            namespace_id: Some(4),
            driver: Driver::Qemu,
            name: "resonance".to_owned(),
            created_at: CREATED,
            url: self.url("/images/1"),
            author: self.wallace(),
            user: self.wallace(),
            namespace: Some(self.blackmesa()),
            // Just created: the download is queued, not yet started.
            download: Some(Download {
                source: "https://images.black-mesa.com/resonance.qcow2".to_owned(),
                error: None,
                created_at: CREATED,
                started_at: None,
                finished_at: None,
                extra: Extra::new(),
            }),
            extra: Extra::new(),
        }
    }

    fn object(&self) -> Object {
        Object {
            id: 1,
            author_id: 1,
            user_id: 3,
            namespace_id: Some(4),
            name: "crowbar".to_owned(),
            mime_type: "image/png".to_owned(),
            size: 319,
            md5: "156dd0abff851609fb5aa6f3b0294d12".to_owned(),
            sha256: "a05299b5741aad88839cd9916cd5647caa1c992247ac13dd48e230b7ca335979".to_owned(),
            created_at: CREATED,
            url: self.url("/objects/1"),
            builds_url: self.url("/objects/1/builds"),
            author: self.gordon(),
            user: self.wallace(),
            namespace: Some(self.blackmesa()),
            extra: Extra::new(),
        }
    }

    fn variable(&self) -> Variable {
        Variable {
            id: 1,
            author_id: 1,
            user_id: 3,
            namespace_id: Some(4),
            key: "PGPASSWORD".to_owned(),
            value: "xxxxxx".to_owned(),
            masked: true,
            created_at: CREATED,
            url: self.url("/variables/1"),
            author: self.gordon(),
            user: self.wallace(),
            namespace: Some(self.blackmesa()),
            extra: Extra::new(),
        }
    }

    fn key(&self) -> Key {
        Key {
            id: 1,
            author_id: 1,
            user_id: 3,
            namespace_id: Some(4),
            name: "id_ed25519".to_owned(),
            config: "Host github.com\n  User git\n  IdentityFile /root/.ssh/id_ed25519".to_owned(),
            created_at: CREATED,
            updated_at: CREATED,
            url: self.url("/keys/1"),
            author: self.gordon(),
            user: self.wallace(),
            namespace: Some(self.blackmesa()),
            extra: Extra::new(),
        }
    }
}
