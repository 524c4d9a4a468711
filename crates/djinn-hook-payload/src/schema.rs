//! A static description of every payload and entity (field names, types,
//! nullability, descriptions), from which `docs/events.md` is generated.
//!
//! The integration tests walk every example payload against these tables, key
//! by key and at every object level, so the docs cannot drift from what is
//! actually serialised.

use std::fmt;

use crate::entity::{BuildStatus, Driver, Schedule, TriggerType, Visibility};
use crate::event::EventType;
use crate::payload::Action;

/// The fields of one JSON object: an entity (user, build, ...) or a payload.
#[derive(Debug)]
pub struct ObjectSchema {
    /// Short lower-case name, unique among schemas and usable as a Markdown
    /// anchor: the entity's name (`build`) or the payload type's (`build-tagged`).
    pub name: &'static str,
    /// Title for headings, e.g. `Build`.
    pub title: &'static str,
    /// One or two sentences on what the object is.
    pub description: &'static str,
    /// The fields, in the order they are serialised.
    pub fields: &'static [FieldSchema],
}

/// One field of an [`ObjectSchema`].
#[derive(Debug)]
pub struct FieldSchema {
    /// The JSON key.
    pub name: &'static str,
    /// The JSON type of the value.
    pub ty: FieldType,
    /// Whether the value may be `null` (the key itself is always present).
    pub nullable: bool,
    /// What the field means.
    pub description: &'static str,
}

/// The JSON type of a field's value.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum FieldType {
    /// A JSON integer (64-bit signed, as the original's `int64`).
    Integer,
    /// A JSON string.
    String,
    /// `true` or `false`.
    Boolean,
    /// An RFC 3339 date-time string in UTC, e.g. `2021-10-06T18:14:33Z`.
    Timestamp,
    /// A string, one of the listed values.
    Enum(&'static [&'static str]),
    /// An array of strings.
    StringList,
    /// An object whose values are all strings.
    StringMap,
    /// A nested object.
    Object(&'static ObjectSchema),
    /// An array of nested objects.
    ObjectList(&'static ObjectSchema),
}

impl FieldType {
    /// The type's name as the docs tables show it: `int`, `string`, `bool`,
    /// `timestamp`, `enum`, `string[]`, `object` (string map or nested object)
    /// or `object[]`.
    pub const fn name(self) -> &'static str {
        match self {
            FieldType::Integer => "int",
            FieldType::String => "string",
            FieldType::Boolean => "bool",
            FieldType::Timestamp => "timestamp",
            FieldType::Enum(_) => "enum",
            FieldType::StringList => "string[]",
            FieldType::StringMap | FieldType::Object(_) => "object",
            FieldType::ObjectList(_) => "object[]",
        }
    }
}

/// Prints nested schemas by name only: the schemas refer to each other in cycles
/// (a namespace has a build, which has a namespace).
impl fmt::Debug for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::Enum(names) => f.debug_tuple("Enum").field(names).finish(),
            FieldType::Object(schema) => write!(f, "Object({})", schema.name),
            FieldType::ObjectList(schema) => write!(f, "ObjectList({})", schema.name),
            other => f.write_str(other.name()),
        }
    }
}

impl ObjectSchema {
    /// The schemas of every nested entity, in documentation order.
    pub fn entities() -> &'static [&'static ObjectSchema] {
        ENTITIES
    }

    /// The field called `name`, if there is one.
    pub fn field(&self, name: &str) -> Option<&'static FieldSchema> {
        self.fields.iter().find(|field| field.name == name)
    }
}

impl EventType {
    /// The schema of this event's payload (the build entity for the `build.*`
    /// events other than `build.tagged`).
    pub fn payload_schema(self) -> &'static ObjectSchema {
        match self {
            EventType::BuildSubmitted
            | EventType::BuildStarted
            | EventType::BuildFinished
            | EventType::BuildPinned
            | EventType::BuildUnpinned => &BUILD,
            EventType::BuildTagged => &BUILD_TAGGED,
            EventType::InviteSent => &INVITE_SENT,
            EventType::InviteAccepted | EventType::InviteRejected => &INVITE_ANSWERED,
            EventType::Namespaces => &NAMESPACE_CHANGE,
            EventType::Cron => &CRON_CHANGE,
            EventType::Images => &IMAGE_CHANGE,
            EventType::Objects => &OBJECT_CHANGE,
            EventType::Variables => &VARIABLE_CHANGE,
            EventType::SshKeys => &KEY_CHANGE,
            EventType::Notification => &NOTIFICATION,
        }
    }
}

const fn field(
    name: &'static str,
    ty: FieldType,
    nullable: bool,
    description: &'static str,
) -> FieldSchema {
    FieldSchema {
        name,
        ty,
        nullable,
        description,
    }
}

use FieldType::{Boolean, Enum, Integer, Object, ObjectList, StringList, StringMap, Timestamp};
const STRING: FieldType = FieldType::String;
const NULL: bool = true;
const SET: bool = false;

static ENTITIES: &[&ObjectSchema] = &[
    &USER, &NAMESPACE, &BUILD, &TRIGGER, &TAG, &CRON, &IMAGE, &DOWNLOAD, &OBJECT, &VARIABLE, &KEY,
];

static USER: ObjectSchema = ObjectSchema {
    name: "user",
    title: "User",
    description: "A Djinn CI user account.",
    fields: &[
        field("id", Integer, SET, "Unique ID of the user."),
        field("email", STRING, SET, "The user's email address."),
        field(
            "username",
            STRING,
            SET,
            "The user's name, as it appears in URLs.",
        ),
        field(
            "created_at",
            Timestamp,
            SET,
            "When the account was created.",
        ),
    ],
};

static NAMESPACE: ObjectSchema = ObjectSchema {
    name: "namespace",
    title: "Namespace",
    description: "A namespace: a group of builds, images, objects, variables, keys and webhooks, owned by a user.",
    fields: &[
        field("id", Integer, SET, "Unique ID of the namespace."),
        field(
            "user_id",
            Integer,
            SET,
            "ID of the user who owns the namespace.",
        ),
        field(
            "root_id",
            Integer,
            SET,
            "ID of the top-level namespace; equal to `id` for a root namespace.",
        ),
        field(
            "parent_id",
            Integer,
            NULL,
            "ID of the parent namespace, if this is a child.",
        ),
        field("name", STRING, SET, "The namespace's own name."),
        field(
            "path",
            STRING,
            SET,
            "The full path, including the parents' names (`parent/child`).",
        ),
        field("description", STRING, SET, "Free-text description."),
        field(
            "visibility",
            FieldType::Enum(Visibility::NAMES),
            SET,
            "Who can see the namespace.",
        ),
        field(
            "created_at",
            Timestamp,
            SET,
            "When the namespace was created.",
        ),
        field(
            "url",
            STRING,
            SET,
            "API URL of the namespace: `/n/:username/:path`.",
        ),
        field(
            "builds_url",
            STRING,
            SET,
            "API URL of the namespace's builds: `.../-/builds`.",
        ),
        field(
            "namespaces_url",
            STRING,
            SET,
            "API URL of the namespace's children: `.../-/namespaces`.",
        ),
        field(
            "images_url",
            STRING,
            SET,
            "API URL of the namespace's images: `.../-/images`.",
        ),
        field(
            "objects_url",
            STRING,
            SET,
            "API URL of the namespace's objects: `.../-/objects`.",
        ),
        field(
            "variables_url",
            STRING,
            SET,
            "API URL of the namespace's variables: `.../-/variables`.",
        ),
        field(
            "keys_url",
            STRING,
            SET,
            "API URL of the namespace's SSH keys: `.../-/keys`.",
        ),
        field(
            "invites_url",
            STRING,
            SET,
            "API URL of the namespace's invites: `.../-/invites`.",
        ),
        field(
            "collaborators_url",
            STRING,
            SET,
            "API URL of the namespace's collaborators: `.../-/collaborators`.",
        ),
        field(
            "webhooks_url",
            STRING,
            SET,
            "API URL of the namespace's webhooks: `.../-/webhooks`.",
        ),
        field("user", Object(&USER), SET, "The owner of the namespace."),
        field(
            "parent",
            Object(&NAMESPACE),
            NULL,
            "The parent namespace, if this is a child.",
        ),
        field(
            "build",
            Object(&BUILD),
            NULL,
            "The namespace's most recent build, if any.",
        ),
    ],
};

static BUILD: ObjectSchema = ObjectSchema {
    name: "build",
    title: "Build",
    description: "A build: a manifest submitted to run, and where it is in its life.",
    fields: &[
        field("id", Integer, SET, "Unique ID of the build."),
        field(
            "user_id",
            Integer,
            SET,
            "ID of the user who owns the build.",
        ),
        field(
            "namespace_id",
            Integer,
            NULL,
            "ID of the build's namespace, if any.",
        ),
        field(
            "number",
            Integer,
            SET,
            "The build's number, counted per user.",
        ),
        field("manifest", STRING, SET, "The build manifest (YAML)."),
        field(
            "status",
            FieldType::Enum(BuildStatus::NAMES),
            SET,
            "Where the build is in its life; `build.finished` carries one of the final ones (all but `queued` and `running`).",
        ),
        field("output", STRING, NULL, "The build's output, if any."),
        field("tags", StringList, SET, "The names of the build's tags."),
        field("pinned", Boolean, SET, "Whether the build is pinned."),
        field(
            "created_at",
            Timestamp,
            SET,
            "When the build was submitted.",
        ),
        field(
            "started_at",
            Timestamp,
            NULL,
            "When the build started running; set from `build.started` on.",
        ),
        field(
            "finished_at",
            Timestamp,
            NULL,
            "When the build finished; set in `build.finished`.",
        ),
        field(
            "url",
            STRING,
            SET,
            "API URL of the build: `/b/:username/:number`.",
        ),
        field(
            "objects_url",
            STRING,
            SET,
            "API URL of the build's objects: `.../objects`.",
        ),
        field(
            "variables_url",
            STRING,
            SET,
            "API URL of the build's variables: `.../variables`.",
        ),
        field(
            "jobs_url",
            STRING,
            SET,
            "API URL of the build's jobs: `.../jobs`.",
        ),
        field(
            "artifacts_url",
            STRING,
            SET,
            "API URL of the build's artifacts: `.../artifacts`.",
        ),
        field(
            "tags_url",
            STRING,
            SET,
            "API URL of the build's tags: `.../tags`.",
        ),
        field(
            "trigger",
            Object(&TRIGGER),
            NULL,
            "How the build was triggered. Always set in what this project sends; `null` only in older payloads that lacked it.",
        ),
        field("user", Object(&USER), NULL, "The user who owns the build."),
        field(
            "namespace",
            Object(&NAMESPACE),
            NULL,
            "The build's namespace, if any.",
        ),
    ],
};

static TRIGGER: ObjectSchema = ObjectSchema {
    name: "trigger",
    title: "Trigger",
    description: "How a build was triggered.",
    fields: &[
        field(
            "type",
            FieldType::Enum(TriggerType::NAMES),
            SET,
            "What started the build.",
        ),
        field(
            "comment",
            STRING,
            SET,
            "The comment given with the build (a commit message for `push` and `pull`).",
        ),
        field(
            "data",
            StringMap,
            SET,
            "Facts about the trigger, all strings: e.g. `email` and `username` of who submitted it, or a commit's `sha` and `url`.",
        ),
    ],
};

static TAG: ObjectSchema = ObjectSchema {
    name: "tag",
    title: "Tag",
    description: "A tag added to a build, as listed in `build.tagged`.",
    fields: &[
        field("name", STRING, SET, "The tag's name."),
        field(
            "url",
            STRING,
            SET,
            "API URL of the tag: `/b/:username/:number/tags/:name`.",
        ),
    ],
};

static CRON: ObjectSchema = ObjectSchema {
    name: "cron",
    title: "Cron",
    description: "A cron job: a manifest submitted as a build on a schedule.",
    fields: &[
        field("id", Integer, SET, "Unique ID of the cron job."),
        field(
            "author_id",
            Integer,
            SET,
            "ID of the user who created the cron job.",
        ),
        field(
            "user_id",
            Integer,
            SET,
            "ID of the user who owns the cron job.",
        ),
        field(
            "namespace_id",
            Integer,
            NULL,
            "ID of the cron job's namespace, if any.",
        ),
        field("name", STRING, SET, "The cron job's name."),
        field(
            "schedule",
            FieldType::Enum(Schedule::NAMES),
            SET,
            "How often the build is submitted.",
        ),
        field(
            "manifest",
            STRING,
            SET,
            "The build manifest submitted on each run (YAML).",
        ),
        field(
            "prev_run",
            Timestamp,
            NULL,
            "When the cron job last ran, if it has.",
        ),
        field("next_run", Timestamp, SET, "When the cron job runs next."),
        field(
            "created_at",
            Timestamp,
            SET,
            "When the cron job was created.",
        ),
        field("url", STRING, SET, "API URL of the cron job: `/cron/:id`."),
        field(
            "author",
            Object(&USER),
            SET,
            "The user who created the cron job.",
        ),
        field(
            "user",
            Object(&USER),
            SET,
            "The user who owns the cron job.",
        ),
        field(
            "namespace",
            Object(&NAMESPACE),
            NULL,
            "The cron job's namespace, if any.",
        ),
    ],
};

static IMAGE: ObjectSchema = ObjectSchema {
    name: "image",
    title: "Image",
    description: "A custom image builds can boot from.",
    fields: &[
        field("id", Integer, SET, "Unique ID of the image."),
        field(
            "author_id",
            Integer,
            SET,
            "ID of the user who created the image.",
        ),
        field(
            "user_id",
            Integer,
            SET,
            "ID of the user who owns the image.",
        ),
        field(
            "namespace_id",
            Integer,
            NULL,
            "ID of the image's namespace, if any.",
        ),
        field(
            "driver",
            FieldType::Enum(Driver::NAMES),
            SET,
            "The driver the image is for.",
        ),
        field("name", STRING, SET, "The image's name."),
        field("created_at", Timestamp, SET, "When the image was created."),
        field("url", STRING, SET, "API URL of the image: `/images/:id`."),
        field(
            "author",
            Object(&USER),
            SET,
            "The user who created the image.",
        ),
        field("user", Object(&USER), SET, "The user who owns the image."),
        field(
            "namespace",
            Object(&NAMESPACE),
            NULL,
            "The image's namespace, if any.",
        ),
        field(
            "download",
            Object(&DOWNLOAD),
            NULL,
            "The download the image was created from, if it was downloaded rather than uploaded.",
        ),
    ],
};

static DOWNLOAD: ObjectSchema = ObjectSchema {
    name: "download",
    title: "Download",
    description: "The download an image was created from.",
    fields: &[
        field(
            "source",
            STRING,
            SET,
            "The URL the image is downloaded from.",
        ),
        field("error", STRING, NULL, "Why the download failed, if it did."),
        field(
            "created_at",
            Timestamp,
            SET,
            "When the download was queued.",
        ),
        field("started_at", Timestamp, NULL, "When the download started."),
        field(
            "finished_at",
            Timestamp,
            NULL,
            "When the download finished.",
        ),
    ],
};

static OBJECT: ObjectSchema = ObjectSchema {
    name: "object",
    title: "Object",
    description: "A file that builds can have placed in their environment.",
    fields: &[
        field("id", Integer, SET, "Unique ID of the object."),
        field(
            "author_id",
            Integer,
            SET,
            "ID of the user who created the object.",
        ),
        field(
            "user_id",
            Integer,
            SET,
            "ID of the user who owns the object.",
        ),
        field(
            "namespace_id",
            Integer,
            NULL,
            "ID of the object's namespace, if any.",
        ),
        field("name", STRING, SET, "The object's name."),
        field("type", STRING, SET, "The object's MIME type."),
        field("size", Integer, SET, "The object's size in bytes."),
        field("md5", STRING, SET, "Lower-case hex MD5 of the content."),
        field(
            "sha256",
            STRING,
            SET,
            "Lower-case hex SHA-256 of the content.",
        ),
        field("created_at", Timestamp, SET, "When the object was created."),
        field("url", STRING, SET, "API URL of the object: `/objects/:id`."),
        field(
            "builds_url",
            STRING,
            SET,
            "API URL of the builds the object was placed in: `/objects/:id/builds`.",
        ),
        field(
            "author",
            Object(&USER),
            SET,
            "The user who created the object.",
        ),
        field("user", Object(&USER), SET, "The user who owns the object."),
        field(
            "namespace",
            Object(&NAMESPACE),
            NULL,
            "The object's namespace, if any.",
        ),
    ],
};

static VARIABLE: ObjectSchema = ObjectSchema {
    name: "variable",
    title: "Variable",
    description: "An environment variable set in builds.",
    fields: &[
        field("id", Integer, SET, "Unique ID of the variable."),
        field(
            "author_id",
            Integer,
            SET,
            "ID of the user who created the variable.",
        ),
        field(
            "user_id",
            Integer,
            SET,
            "ID of the user who owns the variable.",
        ),
        field(
            "namespace_id",
            Integer,
            NULL,
            "ID of the variable's namespace, if any.",
        ),
        field("key", STRING, SET, "The variable's name."),
        field(
            "value",
            STRING,
            SET,
            "The variable's value; `xxxxxx` when masked.",
        ),
        field("masked", Boolean, SET, "Whether the value is masked."),
        field(
            "created_at",
            Timestamp,
            SET,
            "When the variable was created.",
        ),
        field(
            "url",
            STRING,
            SET,
            "API URL of the variable: `/variables/:id`.",
        ),
        field(
            "author",
            Object(&USER),
            SET,
            "The user who created the variable.",
        ),
        field(
            "user",
            Object(&USER),
            SET,
            "The user who owns the variable.",
        ),
        field(
            "namespace",
            Object(&NAMESPACE),
            NULL,
            "The variable's namespace, if any.",
        ),
    ],
};

static KEY: ObjectSchema = ObjectSchema {
    name: "key",
    title: "Key",
    description: "An SSH key placed in builds. The private key itself is never sent.",
    fields: &[
        field("id", Integer, SET, "Unique ID of the key."),
        field(
            "author_id",
            Integer,
            SET,
            "ID of the user who created the key.",
        ),
        field("user_id", Integer, SET, "ID of the user who owns the key."),
        field(
            "namespace_id",
            Integer,
            NULL,
            "ID of the key's namespace, if any.",
        ),
        field(
            "name",
            STRING,
            SET,
            "The key's name (its file name in builds).",
        ),
        field(
            "config",
            STRING,
            SET,
            "The SSH configuration written for the key.",
        ),
        field("created_at", Timestamp, SET, "When the key was created."),
        field(
            "updated_at",
            Timestamp,
            SET,
            "When the key was last updated.",
        ),
        field("url", STRING, SET, "API URL of the key: `/keys/:id`."),
        field(
            "author",
            Object(&USER),
            SET,
            "The user who created the key.",
        ),
        field("user", Object(&USER), SET, "The user who owns the key."),
        field(
            "namespace",
            Object(&NAMESPACE),
            NULL,
            "The key's namespace, if any.",
        ),
    ],
};

static BUILD_TAGGED: ObjectSchema = ObjectSchema {
    name: "build-tagged",
    title: "build.tagged payload",
    description: "Tags added to a build after submission.",
    fields: &[
        field(
            "build",
            Object(&BUILD),
            SET,
            "The build that was tagged; its `tags` already include the new ones.",
        ),
        field("tags", ObjectList(&TAG), SET, "The tags that were added."),
        field(
            "url",
            STRING,
            SET,
            "API URL of the build's tags: `/b/:username/:number/tags` (the original wrongly sent the build object here).",
        ),
        field("user", Object(&USER), SET, "The user who added the tags."),
    ],
};

static INVITE_SENT: ObjectSchema = ObjectSchema {
    name: "invite-sent",
    title: "invite.sent payload",
    description: "An invite to collaborate in a namespace.",
    fields: &[
        field("invitee", Object(&USER), SET, "The user who was invited."),
        field(
            "inviter",
            Object(&USER),
            SET,
            "The user who sent the invite.",
        ),
        field(
            "namespace",
            Object(&NAMESPACE),
            SET,
            "The namespace the invite is for.",
        ),
    ],
};

static INVITE_ANSWERED: ObjectSchema = ObjectSchema {
    name: "invite-answered",
    title: "invite.accepted / invite.rejected payload",
    description: "An answer to an invite.",
    fields: &[
        field(
            "invitee",
            Object(&USER),
            SET,
            "The user who was invited and answered.",
        ),
        field(
            "namespace",
            Object(&NAMESPACE),
            SET,
            "The namespace the invite was for.",
        ),
    ],
};

/// The `action` field shared by the `{action, <entity>}` payloads.
const ACTION: FieldSchema = field(
    "action",
    FieldType::Enum(Action::NAMES),
    SET,
    "What happened to the entity.",
);

static NAMESPACE_CHANGE: ObjectSchema = ObjectSchema {
    name: "namespace-change",
    title: "namespaces payload",
    description: "A namespace was created, updated or deleted.",
    fields: &[
        ACTION,
        field(
            "namespace",
            Object(&NAMESPACE),
            SET,
            "The namespace; `created` is only sent for child namespaces.",
        ),
    ],
};

static CRON_CHANGE: ObjectSchema = ObjectSchema {
    name: "cron-change",
    title: "cron payload",
    description: "A cron job was created, updated or deleted.",
    fields: &[ACTION, field("cron", Object(&CRON), SET, "The cron job.")],
};

static IMAGE_CHANGE: ObjectSchema = ObjectSchema {
    name: "image-change",
    title: "images payload",
    description: "An image was created, updated or deleted.",
    fields: &[ACTION, field("image", Object(&IMAGE), SET, "The image.")],
};

static OBJECT_CHANGE: ObjectSchema = ObjectSchema {
    name: "object-change",
    title: "objects payload",
    description: "An object was created, updated or deleted.",
    fields: &[ACTION, field("object", Object(&OBJECT), SET, "The object.")],
};

static VARIABLE_CHANGE: ObjectSchema = ObjectSchema {
    name: "variable-change",
    title: "variables payload",
    description: "A variable was created, updated or deleted.",
    fields: &[
        ACTION,
        field("variable", Object(&VARIABLE), SET, "The variable."),
    ],
};

static NOTIFICATION: ObjectSchema = ObjectSchema {
    name: "notification",
    title: "notification payload",
    description: "Something happened to djinn-hooks itself; the other keys depend on `type` \
                  (docs/OPERATIONS.md).",
    fields: &[
        field(
            "type",
            Enum(&[
                "webhook.disabled",
                "webhook.enabled",
                "breaker.open",
                "delivery.failed",
            ]),
            false,
            "What happened.",
        ),
        field(
            "created_at",
            Timestamp,
            false,
            "When djinn-hooks noticed it.",
        ),
    ],
};

static KEY_CHANGE: ObjectSchema = ObjectSchema {
    name: "key-change",
    title: "ssh_keys payload",
    description: "An SSH key was created, updated or deleted.",
    fields: &[
        ACTION,
        field(
            "key",
            Object(&KEY),
            SET,
            "The SSH key (sent as `key`; the original's docs table wrongly says `ssh_key`).",
        ),
    ],
};
