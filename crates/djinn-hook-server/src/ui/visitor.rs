//! [`Visitor`]: who is asking, as the guard found them, for handlers and every page's frame.

use super::access::Access;
use super::flash::Flash;

/// Who is asking, for handlers (a request extension) and the page frame.
#[derive(Clone, Debug)]
pub(crate) struct Visitor {
    /// What they may do; `None` when sign-in is required and they have not.
    pub(crate) access: Option<Access>,
    /// The CSRF token to put in every form.
    pub(crate) csrf: String,
    /// The flash message to show, if any.
    pub(crate) flash: Option<Flash>,
    /// The id of their live session, if they signed in with a token.
    pub(crate) session: Option<String>,
}

impl Visitor {
    /// For an error page: no access, no forms, no flash.
    pub(crate) fn nobody() -> Visitor {
        Visitor {
            access: None,
            csrf: String::new(),
            flash: None,
            session: None,
        }
    }

    /// Whether they signed in with a token (a sign-out button is shown).
    pub(crate) fn signed_in(&self) -> bool {
        self.session.is_some()
    }

    /// Whether webhooks and deliveries may be shown.
    pub(crate) fn can_read(&self) -> bool {
        self.access.as_ref().is_some_and(|a| a.can_read)
    }

    /// Whether edit buttons are shown and writes allowed.
    pub(crate) fn can_write(&self) -> bool {
        self.access.as_ref().is_some_and(|a| a.can_write)
    }
}
