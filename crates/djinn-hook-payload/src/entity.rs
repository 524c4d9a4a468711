//! The entities nested in payloads (user, namespace, build, cron, ...), field for
//! field as the original Djinn CI's JSON encoders write them.
//!
//! Field order is the order of the fields in the original's encoders, and it is the order of
//! the keys in the serialised body. Every key is always written, nullable ones as
//! `null`. Keys that the original's older example payloads lack carry
//! `#[serde(default)]` so those payloads still parse; see the crate docs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::wire::wire_enum;

/// Fields a payload carried that this version does not know, kept so that
/// re-serialising is lossless (see the crate docs).
pub type Extra = Map<String, Value>;

/// A Djinn CI user account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct User {
    /// Unique ID of the user.
    pub id: i64,
    /// The user's email address.
    pub email: String,
    /// The user's name, as it appears in URLs.
    pub username: String,
    /// When the account was created.
    #[serde(with = "crate::wire::timestamp")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(with = "crate::json_schema::Timestamp")
    )]
    pub created_at: OffsetDateTime,
    /// Keys this version does not know, with their values (see the crate docs).
    #[serde(flatten)]
    pub extra: Extra,
}

wire_enum! {
    /// Who can see a namespace.
    #[non_exhaustive]
    pub enum Visibility {
        /// Only the owner and collaborators.
        Private = "private",
        /// Every signed-in user.
        Internal = "internal",
        /// Everyone.
        Public = "public",
    }
}

/// A namespace: a group of builds, images, objects, variables and keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Namespace {
    /// Unique ID of the namespace.
    pub id: i64,
    /// ID of the user who owns the namespace.
    pub user_id: i64,
    /// ID of the top-level namespace (equal to `id` for a root namespace).
    pub root_id: i64,
    /// ID of the parent namespace, if this is a child.
    pub parent_id: Option<i64>,
    /// The namespace's own name.
    pub name: String,
    /// The full path, including the parents' names (`parent/child`).
    pub path: String,
    /// Free-text description.
    pub description: String,
    /// Who can see the namespace.
    pub visibility: Visibility,
    /// When the namespace was created.
    #[serde(with = "crate::wire::timestamp")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(with = "crate::json_schema::Timestamp")
    )]
    pub created_at: OffsetDateTime,
    /// API URL of the namespace.
    pub url: String,
    /// API URL of the namespace's builds.
    pub builds_url: String,
    /// API URL of the namespace's children.
    pub namespaces_url: String,
    /// API URL of the namespace's images.
    pub images_url: String,
    /// API URL of the namespace's objects.
    pub objects_url: String,
    /// API URL of the namespace's variables.
    pub variables_url: String,
    /// API URL of the namespace's SSH keys.
    pub keys_url: String,
    /// API URL of the namespace's invites. Empty when read from a payload that
    /// lacked it (the original's API build example).
    #[serde(default)]
    pub invites_url: String,
    /// API URL of the namespace's collaborators.
    pub collaborators_url: String,
    /// API URL of the namespace's webhooks. Empty when read from a payload that
    /// lacked it (the original's API build example).
    #[serde(default)]
    pub webhooks_url: String,
    /// The owner of the namespace.
    pub user: User,
    /// The parent namespace, if this is a child.
    #[serde(default)]
    pub parent: Option<Box<Namespace>>,
    /// The namespace's most recent build, if any.
    #[serde(default)]
    pub build: Option<Box<Build>>,
    /// Keys this version does not know, with their values (see the crate docs).
    #[serde(flatten)]
    pub extra: Extra,
}

wire_enum! {
    /// Where a build is in its life.
    #[non_exhaustive]
    pub enum BuildStatus {
        /// Waiting for a worker.
        Queued = "queued",
        /// Running on a worker.
        Running = "running",
        /// Every job passed.
        Passed = "passed",
        /// Passed, but jobs allowed to fail did fail.
        PassedWithFailures = "passed_with_failures",
        /// A job failed.
        Failed = "failed",
        /// Killed by a user.
        Killed = "killed",
        /// Ran longer than the time limit.
        TimedOut = "timed_out",
    }
}

impl BuildStatus {
    /// The statuses a build ends in; `build.finished` fires for each of them.
    pub const FINAL: &'static [BuildStatus] = &[
        BuildStatus::Passed,
        BuildStatus::PassedWithFailures,
        BuildStatus::Failed,
        BuildStatus::Killed,
        BuildStatus::TimedOut,
    ];

    /// Whether the build has ended (any status but queued and running).
    pub const fn is_final(self) -> bool {
        !matches!(self, BuildStatus::Queued | BuildStatus::Running)
    }
}

wire_enum! {
    /// What started a build.
    #[non_exhaustive]
    pub enum TriggerType {
        /// Submitted by hand (UI or API).
        Manual = "manual",
        /// A push to a repository.
        Push = "push",
        /// A pull request.
        Pull = "pull",
        /// A cron job.
        Schedule = "schedule",
    }
}

/// How a build was triggered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Trigger {
    /// What started the build.
    #[serde(rename = "type")]
    pub kind: TriggerType,
    /// The comment given with the build (a commit message for push and pull).
    pub comment: String,
    /// Facts about the trigger as strings: e.g. `email` and `username` of who
    /// submitted it, or a commit's `sha` and `url`.
    pub data: BTreeMap<String, String>,
    /// Keys this version does not know, with their values (see the crate docs).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A build, the payload of the `build.*` events other than `build.tagged`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Build {
    /// Unique ID of the build.
    pub id: i64,
    /// ID of the user who owns the build.
    pub user_id: i64,
    /// ID of the build's namespace, if any.
    pub namespace_id: Option<i64>,
    /// The build's number, counted per user. 0 when read from a payload that
    /// lacked it (the original's API build example).
    #[serde(default)]
    pub number: i64,
    /// The build manifest (YAML).
    pub manifest: String,
    /// Where the build is in its life.
    pub status: BuildStatus,
    /// The build's output, if any.
    pub output: Option<String>,
    /// The names of the build's tags.
    pub tags: Vec<String>,
    /// Whether the build is pinned. False when read from a payload that lacked
    /// it (the original's 2021 examples, written before pinning existed).
    #[serde(default)]
    pub pinned: bool,
    /// When the build was submitted.
    #[serde(with = "crate::wire::timestamp")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(with = "crate::json_schema::Timestamp")
    )]
    pub created_at: OffsetDateTime,
    /// When the build started running.
    #[serde(with = "crate::wire::timestamp_option")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(with = "crate::json_schema::TimestampOrNull", required)
    )]
    pub started_at: Option<OffsetDateTime>,
    /// When the build finished.
    #[serde(with = "crate::wire::timestamp_option")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(with = "crate::json_schema::TimestampOrNull", required)
    )]
    pub finished_at: Option<OffsetDateTime>,
    /// API URL of the build.
    pub url: String,
    /// API URL of the build's objects.
    pub objects_url: String,
    /// API URL of the build's variables.
    pub variables_url: String,
    /// API URL of the build's jobs.
    pub jobs_url: String,
    /// API URL of the build's artifacts.
    pub artifacts_url: String,
    /// API URL of the build's tags.
    pub tags_url: String,
    /// How the build was triggered. Always sent by this project; `None` only
    /// when read from a payload that lacked it (the original's build.tagged
    /// example).
    #[serde(default)]
    pub trigger: Option<Trigger>,
    /// The user who owns the build.
    pub user: Option<User>,
    /// The build's namespace, if any.
    #[serde(default)]
    pub namespace: Option<Box<Namespace>>,
    /// Keys this version does not know, with their values (see the crate docs).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A tag added to a build, as listed in a `build.tagged` payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Tag {
    /// The tag's name.
    pub name: String,
    /// API URL of the tag (`/b/:username/:number/tags/:name`).
    pub url: String,
    /// Keys this version does not know, with their values (see the crate docs).
    #[serde(flatten)]
    pub extra: Extra,
}

wire_enum! {
    /// How often a cron job submits its build.
    #[non_exhaustive]
    pub enum Schedule {
        /// Every day.
        Daily = "daily",
        /// Every week.
        Weekly = "weekly",
        /// Every month.
        Monthly = "monthly",
    }
}

/// A cron job: a manifest submitted as a build on a schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Cron {
    /// Unique ID of the cron job.
    pub id: i64,
    /// ID of the user who created the cron job.
    pub author_id: i64,
    /// ID of the user who owns the cron job.
    pub user_id: i64,
    /// ID of the cron job's namespace, if any.
    pub namespace_id: Option<i64>,
    /// The cron job's name.
    pub name: String,
    /// How often the build is submitted.
    pub schedule: Schedule,
    /// The build manifest submitted on each run (YAML).
    pub manifest: String,
    /// When the cron job last ran, if it has.
    #[serde(default, with = "crate::wire::timestamp_option")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(with = "crate::json_schema::TimestampOrNull")
    )]
    pub prev_run: Option<OffsetDateTime>,
    /// When the cron job runs next.
    #[serde(with = "crate::wire::timestamp")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(with = "crate::json_schema::Timestamp")
    )]
    pub next_run: OffsetDateTime,
    /// When the cron job was created.
    #[serde(with = "crate::wire::timestamp")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(with = "crate::json_schema::Timestamp")
    )]
    pub created_at: OffsetDateTime,
    /// API URL of the cron job.
    pub url: String,
    /// The user who created the cron job.
    pub author: User,
    /// The user who owns the cron job.
    pub user: User,
    /// The cron job's namespace, if any.
    pub namespace: Option<Namespace>,
    /// Keys this version does not know, with their values (see the crate docs).
    #[serde(flatten)]
    pub extra: Extra,
}

wire_enum! {
    /// The driver an image is for.
    #[non_exhaustive]
    pub enum Driver {
        /// A QEMU disk image.
        Qemu = "qemu",
    }
}

/// The download an image was created from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Download {
    /// The URL the image is downloaded from.
    pub source: String,
    /// Why the download failed, if it did.
    pub error: Option<String>,
    /// When the download was queued.
    #[serde(with = "crate::wire::timestamp")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(with = "crate::json_schema::Timestamp")
    )]
    pub created_at: OffsetDateTime,
    /// When the download started.
    #[serde(with = "crate::wire::timestamp_option")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(with = "crate::json_schema::TimestampOrNull", required)
    )]
    pub started_at: Option<OffsetDateTime>,
    /// When the download finished.
    #[serde(with = "crate::wire::timestamp_option")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(with = "crate::json_schema::TimestampOrNull", required)
    )]
    pub finished_at: Option<OffsetDateTime>,
    /// Keys this version does not know, with their values (see the crate docs).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A custom image builds can boot from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Image {
    /// Unique ID of the image.
    pub id: i64,
    /// ID of the user who created the image.
    pub author_id: i64,
    /// ID of the user who owns the image.
    pub user_id: i64,
    /// ID of the image's namespace, if any.
    pub namespace_id: Option<i64>,
    /// The driver the image is for.
    pub driver: Driver,
    /// The image's name.
    pub name: String,
    /// When the image was created.
    #[serde(with = "crate::wire::timestamp")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(with = "crate::json_schema::Timestamp")
    )]
    pub created_at: OffsetDateTime,
    /// API URL of the image.
    pub url: String,
    /// The user who created the image.
    pub author: User,
    /// The user who owns the image.
    pub user: User,
    /// The image's namespace, if any.
    pub namespace: Option<Namespace>,
    /// The download the image was created from, if it was downloaded.
    #[serde(default)]
    pub download: Option<Download>,
    /// Keys this version does not know, with their values (see the crate docs).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A file builds can have placed in their environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Object {
    /// Unique ID of the object.
    pub id: i64,
    /// ID of the user who created the object.
    pub author_id: i64,
    /// ID of the user who owns the object.
    pub user_id: i64,
    /// ID of the object's namespace, if any.
    pub namespace_id: Option<i64>,
    /// The object's name.
    pub name: String,
    /// The object's MIME type.
    #[serde(rename = "type")]
    pub mime_type: String,
    /// The object's size in bytes.
    pub size: i64,
    /// Lowercase hex MD5 of the content.
    pub md5: String,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
    /// When the object was created.
    #[serde(with = "crate::wire::timestamp")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(with = "crate::json_schema::Timestamp")
    )]
    pub created_at: OffsetDateTime,
    /// API URL of the object.
    pub url: String,
    /// API URL of the builds the object was placed in. Empty when read from a
    /// payload that lacked it (the original's objects example).
    #[serde(default)]
    pub builds_url: String,
    /// The user who created the object.
    pub author: User,
    /// The user who owns the object.
    pub user: User,
    /// The object's namespace, if any.
    pub namespace: Option<Namespace>,
    /// Keys this version does not know, with their values (see the crate docs).
    #[serde(flatten)]
    pub extra: Extra,
}

/// An environment variable set in builds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Variable {
    /// Unique ID of the variable.
    pub id: i64,
    /// ID of the user who created the variable.
    pub author_id: i64,
    /// ID of the user who owns the variable.
    pub user_id: i64,
    /// ID of the variable's namespace, if any.
    pub namespace_id: Option<i64>,
    /// The variable's name.
    pub key: String,
    /// The variable's value, `xxxxxx` when masked.
    pub value: String,
    /// Whether the value is masked. False when read from a payload that lacked
    /// it (the original's 2021 examples, written before masking existed).
    #[serde(default)]
    pub masked: bool,
    /// When the variable was created.
    #[serde(with = "crate::wire::timestamp")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(with = "crate::json_schema::Timestamp")
    )]
    pub created_at: OffsetDateTime,
    /// API URL of the variable.
    pub url: String,
    /// The user who created the variable.
    pub author: User,
    /// The user who owns the variable.
    pub user: User,
    /// The variable's namespace, if any.
    pub namespace: Option<Namespace>,
    /// Keys this version does not know, with their values (see the crate docs).
    #[serde(flatten)]
    pub extra: Extra,
}

/// An SSH key placed in builds. The private key itself is never sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Key {
    /// Unique ID of the key.
    pub id: i64,
    /// ID of the user who created the key.
    pub author_id: i64,
    /// ID of the user who owns the key.
    pub user_id: i64,
    /// ID of the key's namespace, if any.
    pub namespace_id: Option<i64>,
    /// The key's name (its file name in builds).
    pub name: String,
    /// The SSH configuration written for the key.
    pub config: String,
    /// When the key was created.
    #[serde(with = "crate::wire::timestamp")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(with = "crate::json_schema::Timestamp")
    )]
    pub created_at: OffsetDateTime,
    /// When the key was last updated.
    #[serde(with = "crate::wire::timestamp")]
    #[cfg_attr(
        feature = "json-schema",
        schemars(with = "crate::json_schema::Timestamp")
    )]
    pub updated_at: OffsetDateTime,
    /// API URL of the key.
    pub url: String,
    /// The user who created the key.
    pub author: User,
    /// The user who owns the key.
    pub user: User,
    /// The key's namespace, if any.
    pub namespace: Option<Namespace>,
    /// Keys this version does not know, with their values (see the crate docs).
    #[serde(flatten)]
    pub extra: Extra,
}
