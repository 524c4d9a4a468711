//! Flash messages: one line shown on the page a POST redirects to, carried in a signed cookie.

use serde::{Deserialize, Serialize};

use super::session::SessionKey;

/// A message for the next page: set it on a response's extensions (the guard layer turns it
/// into a cookie); the page that shows it clears it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Flash {
    /// Success (green) or failure (red).
    pub(crate) ok: bool,
    /// The message, shown HTML-escaped.
    pub(crate) text: String,
}

impl Flash {
    const PURPOSE: &str = "flash";

    pub(crate) fn ok(text: impl Into<String>) -> Flash {
        Flash {
            ok: true,
            text: text.into(),
        }
    }

    pub(crate) fn failed(text: impl Into<String>) -> Flash {
        Flash {
            ok: false,
            text: text.into(),
        }
    }

    pub(crate) fn seal(&self, key: &SessionKey) -> String {
        key.seal(
            Flash::PURPOSE,
            &serde_json::to_vec(self).expect("a flash serialises"),
        )
    }

    pub(crate) fn open(key: &SessionKey, value: &str) -> Option<Flash> {
        serde_json::from_slice(&key.open(Flash::PURPOSE, value)?).ok()
    }
}
