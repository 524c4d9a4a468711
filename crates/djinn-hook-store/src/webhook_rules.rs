//! The rules of creating and updating a webhook that are not SQL, for both backends: what is
//! checked before the transaction, and how an update merges into the stored row. Each backend
//! keeps only its SQL (reading the row, the query that finds a payload URL already used in the
//! namespace, the writes) and hands that query in as `taken`.
//!
//! Everything here is checked afresh from the checks made before the transaction, so a backend
//! that runs its transaction again (PostgreSQL after a serialisation failure) reports each
//! error once.

use djinn_hook_payload::EventSet;

use crate::error::{Error, IResult, Result};
use crate::sqlite::check_namespace;
use crate::types::{DeliveryLimits, LimitsUpdate, NewWebhook, SecretUpdate, WebhookUpdate};
use crate::validate::{self, ValidationErrors};

/// The message for a payload URL that another webhook of the namespace already has.
const URL_TAKEN: &str = "is already used by another webhook in this namespace";

/// A new webhook's fields checked before the transaction: all but whether its payload URL is
/// free in its namespace, which needs the database.
#[derive(Debug)]
pub(crate) struct CheckedNew {
    errors: ValidationErrors,
    url: Option<String>,
    events: Option<EventSet>,
}

impl CheckedNew {
    /// Checks the namespace's form ([`Error::InvalidNamespace`]) and every field, collecting
    /// each bad one.
    pub(crate) fn check(new: &NewWebhook) -> Result<CheckedNew> {
        check_namespace(&new.namespace)?;
        let mut errors = ValidationErrors::default();
        let url = validate::payload_url(&new.payload_url, &mut errors);
        if let Some((_, https)) = &url {
            validate::ssl(new.ssl, *https, &mut errors);
        }
        let events = validate::events(&new.events, &mut errors);
        validate::limits(&new.limits, &mut errors);
        if let Some(secret) = &new.secret {
            validate::secret(secret, &mut errors);
        }
        Ok(CheckedNew {
            errors,
            url: url.map(|(url, _)| url),
            events,
        })
    }

    /// Inside the transaction: the payload URL (trimmed, IDNA-encoded) and the event set to
    /// store, or [`Error::Invalid`] with every bad field. `taken(url)` says whether another
    /// webhook of the namespace has this URL.
    pub(crate) fn valid(
        &self,
        taken: impl FnOnce(&str) -> IResult<bool>,
    ) -> IResult<(&str, EventSet)> {
        let mut errors = self.errors.clone();
        if let Some(url) = &self.url
            && taken(url)?
        {
            errors.add("payload_url", URL_TAKEN);
        }
        match (&self.url, self.events) {
            (Some(url), Some(events)) if errors.is_empty() => Ok((url, events)),
            _ => Err(Error::Invalid(errors).into()),
        }
    }
}

/// A webhook update and a change of its limits, checked before the transaction: all but what
/// depends on the stored row.
#[derive(Debug)]
pub(crate) struct CheckedUpdate {
    errors: ValidationErrors,
    /// `None`: the URL is kept; `Some(None)`: the new one is invalid.
    url: Option<Option<(String, bool)>>,
    /// `None`: the events are kept; `Some(None)`: a name is unknown.
    events: Option<Option<EventSet>>,
}

/// The stored fields an update is merged into.
#[derive(Debug)]
pub(crate) struct StoredHook {
    /// The payload URL.
    pub(crate) url: String,
    /// Whether the webhook is active.
    pub(crate) active: bool,
    /// Whether certificates are verified.
    pub(crate) ssl: bool,
}

/// What an update writes, all of it valid.
#[derive(Debug)]
pub(crate) struct Merged {
    /// The payload URL (the stored one unless changed).
    pub(crate) url: String,
    /// Whether certificates are verified.
    pub(crate) ssl: bool,
    /// The new event set, if it changes.
    pub(crate) events: Option<EventSet>,
    /// The webhook is turned on again: its disabling (reason, time, failing since) is cleared.
    pub(crate) reactivated: bool,
    /// The webhook is turned off: its pending tasks are marked failed.
    pub(crate) deactivated: bool,
}

impl CheckedUpdate {
    /// Checks the new limits, payload URL and event names, collecting each bad one.
    pub(crate) fn check(update: &WebhookUpdate, limits: &LimitsUpdate) -> CheckedUpdate {
        let mut errors = ValidationErrors::default();
        validate::limits(
            &DeliveryLimits {
                max_in_flight: limits.max_in_flight.flatten(),
                timeout: limits.timeout.flatten(),
            },
            &mut errors,
        );
        let url = update
            .payload_url
            .as_deref()
            .map(|u| validate::payload_url(u, &mut errors));
        let events = update
            .events
            .as_deref()
            .map(|e| validate::events(e, &mut errors));
        if let SecretUpdate::Set(secret) = &update.secret {
            validate::secret(secret, &mut errors);
        }
        CheckedUpdate {
            errors,
            url,
            events,
        }
    }

    /// Inside the transaction: `update` merged into the `stored` row, or [`Error::Invalid`]
    /// with every bad field. `taken(url)` says whether another webhook of the namespace has
    /// this URL.
    ///
    /// Unless `update.ssl` says otherwise, a move to https verifies certificates (nobody chose
    /// otherwise for it) and a move to http drops the setting; https to https keeps what was
    /// chosen.
    pub(crate) fn merge(
        &self,
        update: &WebhookUpdate,
        stored: StoredHook,
        taken: impl FnOnce(&str) -> IResult<bool>,
    ) -> IResult<Merged> {
        let mut errors = self.errors.clone();
        let old_https = validate::is_https(&stored.url);
        let (url, https) = match &self.url {
            Some(Some((url, https))) => {
                if taken(url)? {
                    errors.add("payload_url", URL_TAKEN);
                }
                (url.clone(), *https)
            }
            Some(None) => (stored.url, false),
            None => (stored.url, old_https),
        };
        let ssl = update.ssl.unwrap_or(if https != old_https {
            https
        } else {
            stored.ssl
        });
        if !matches!(self.url, Some(None)) {
            validate::ssl(ssl, https, &mut errors);
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors).into());
        }
        Ok(Merged {
            url,
            ssl,
            events: self.events.flatten(),
            reactivated: update.active == Some(true) && !stored.active,
            deactivated: update.active == Some(false),
        })
    }
}

/// The secret to write, if it changes: `Some(None)` removes it.
pub(crate) fn secret_change(secret: &SecretUpdate) -> Option<Option<&str>> {
    match secret {
        SecretUpdate::Keep => None,
        SecretUpdate::Remove => Some(None),
        SecretUpdate::Set(secret) => Some(Some(secret)),
    }
}
