//! One askama template per page (files under `templates/`, all extending `base.html`);
//! escaping stays on, only our own SVG icons are inserted with `|safe`.

use askama::Template;
use djinn_hook_payload::EventType;
use djinn_hook_store::ValidationErrors;

use super::form::HookForm;
use super::guard::Visitor;
use super::view::{DeliveryRow, DeliveryView, HookRow};

/// A failed request.
#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub(crate) visitor: Visitor,
    pub(crate) title: String,
    pub(crate) status: u16,
    pub(crate) message: String,
}

/// `/ui/signin`.
#[derive(Template)]
#[template(path = "signin.html")]
pub(crate) struct SignInPage {
    pub(crate) visitor: Visitor,
    pub(crate) title: String,
    pub(crate) next: String,
    pub(crate) error: Option<String>,
    /// Reload once: the request came from another site, which the browser sends without
    /// the `SameSite=Strict` session cookie; the reload is same-site and carries it.
    pub(crate) refresh: bool,
}

/// One namespace on the index, with its webhooks' health.
#[derive(Clone, Debug)]
pub(crate) struct NamespaceRow {
    pub(crate) name: String,
    pub(crate) href: String,
    pub(crate) hooks: usize,
    pub(crate) ok: usize,
    pub(crate) failed: usize,
    pub(crate) never: usize,
    pub(crate) inactive: usize,
}

/// `/ui/`.
#[derive(Template)]
#[template(path = "index.html")]
pub(crate) struct IndexPage {
    pub(crate) visitor: Visitor,
    pub(crate) title: String,
    pub(crate) namespaces: Vec<NamespaceRow>,
}

/// A namespace's webhooks.
#[derive(Template)]
#[template(path = "list.html")]
pub(crate) struct ListPage {
    pub(crate) visitor: Visitor,
    pub(crate) title: String,
    pub(crate) ns: String,
    pub(crate) create_href: String,
    pub(crate) hooks: Vec<HookRow>,
}

/// The delivery filters of the edit page, as given in its query.
#[derive(Clone, Debug, Default)]
pub(crate) struct FilterView {
    pub(crate) failed: bool,
    /// An event name, or empty for any.
    pub(crate) event: String,
    /// `only`, `none`, or empty (tests included).
    pub(crate) test: String,
}

/// What the edit page adds to the form.
#[derive(Clone, Debug)]
pub(crate) struct EditExtras {
    pub(crate) delete_action: String,
    pub(crate) test_action: String,
    /// The event preselected for a test delivery: the webhook's first.
    pub(crate) test_event: &'static str,
    pub(crate) filter: FilterView,
    pub(crate) deliveries: Vec<DeliveryRow>,
    pub(crate) prev_href: Option<String>,
    pub(crate) next_href: Option<String>,
}

/// The create and edit form.
#[derive(Template)]
#[template(path = "form.html")]
pub(crate) struct FormPage {
    pub(crate) visitor: Visitor,
    pub(crate) title: String,
    pub(crate) ns: String,
    pub(crate) list_href: String,
    pub(crate) action: String,
    pub(crate) form: HookForm,
    pub(crate) errors: ValidationErrors,
    /// Set on the edit page.
    pub(crate) edit: Option<EditExtras>,
}

impl FormPage {
    fn all_events(&self) -> &'static [EventType] {
        &EventType::ALL
    }
}

/// One delivery.
#[derive(Template)]
#[template(path = "delivery.html")]
pub(crate) struct DeliveryPage {
    pub(crate) visitor: Visitor,
    pub(crate) title: String,
    pub(crate) ns: String,
    pub(crate) list_href: String,
    pub(crate) hook_href: String,
    pub(crate) hook_url: String,
    pub(crate) d: DeliveryView,
}
