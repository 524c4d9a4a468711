//! Who may do what in the UI: [`Access`], a signed-in token's rights, and the checks every
//! page and action makes with it (the API's scopes, in the UI's words).

use axum::http::Uri;
use serde::{Deserialize, Serialize};

use super::error::UiError;
use super::paths::{Links, Target};

/// What a signed-in person may do: the server maps its token scopes onto this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// Whether they may see webhooks and deliveries (a token scoped `read`, or unscoped).
    pub can_read: bool,
    /// Whether they may create, change, delete, test and redeliver (a token scoped `write`,
    /// or unscoped). Independent of `can_read`, as in the API: a write-only token changes
    /// webhooks but sees none of them.
    pub can_write: bool,
    /// The namespaces they may see (each with its children), or `None` for all.
    pub namespaces: Option<Vec<String>>,
}

impl Access {
    /// Everything: the loopback no-token mode.
    pub fn full() -> Access {
        Access {
            can_read: true,
            can_write: true,
            namespaces: None,
        }
    }

    /// Whether namespace `ns` (`owner/path`) is visible: listed, or below a listed one.
    pub fn allows(&self, ns: &str) -> bool {
        self.namespaces.as_ref().is_none_or(|allowed| {
            allowed.iter().any(|a| {
                ns == a
                    || ns
                        .strip_prefix(a.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            })
        })
    }
}

type Result<T, E = UiError> = std::result::Result<T, E>;

/// Signed in, and `ns` among their namespaces (else 404: a namespace out of scope is not
/// told apart from one that does not exist).
fn may_open<'a>(access: Option<&'a Access>, ns: &str, uri: &Uri) -> Result<&'a Access> {
    match access {
        None => Err(UiError::SignIn {
            next: uri.path().to_owned(),
        }),
        Some(access) if !access.allows(ns) => Err(not_found(ns)),
        Some(access) => Ok(access),
    }
}

/// [`may_open`], and a token that may read: every page that shows a webhook or a delivery.
fn may_read(access: Option<&Access>, ns: &str, uri: &Uri) -> Result<()> {
    if may_open(access, ns, uri)?.can_read {
        Ok(())
    } else {
        Err(cannot_read())
    }
}

/// [`may_open`], and a token that may write: every action, and the create form.
fn may_write(access: Option<&Access>, ns: &str, uri: &Uri) -> Result<()> {
    if may_open(access, ns, uri)?.can_write {
        Ok(())
    } else {
        Err(UiError::Forbidden(
            "this token is read-only: it cannot change webhooks".into(),
        ))
    }
}

/// Whether `GET` of `target` in `ns` is allowed: `read` for every page that shows a webhook or
/// a delivery, `write` for the create form (it shows nothing stored, so a write-only token may
/// fill it in); the action addresses (answered 405) only need the namespace.
pub(crate) fn may_get(access: Option<&Access>, ns: &str, target: Target, uri: &Uri) -> Result<()> {
    match target {
        Target::List | Target::Hook(_) | Target::Delivery(..) => may_read(access, ns, uri),
        Target::Create => may_write(access, ns, uri),
        Target::Delete(_)
        | Target::Test(_)
        | Target::RotateSecret(_)
        | Target::Redeliver(..)
        | Target::Recover(_) => may_open(access, ns, uri).map(drop),
    }
}

/// Whether a `POST` (every action) in `ns` is allowed: `write`. Signed out meanwhile (the
/// session expired), the visitor comes back to the namespace's list after signing in, not to
/// the POST-only `uri`.
pub(crate) fn may_post(access: Option<&Access>, ns: &str, uri: &Uri) -> Result<()> {
    let list: Uri = Links::at("")
        .webhooks(ns)
        .parse()
        .unwrap_or_else(|_| uri.clone());
    may_write(access, ns, &list)
}

/// The API's 403 for a write-only token's `GET`, in the UI's words.
pub(crate) fn cannot_read() -> UiError {
    UiError::Forbidden(
        "this token may not read: its scope lets it change webhooks, not see them or their \
         deliveries"
            .into(),
    )
}

fn not_found(ns: &str) -> UiError {
    UiError::NotFound(format!("no webhooks page for namespace {ns:?}"))
}
