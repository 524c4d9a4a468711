//! The web UI's wiring for `serve` and `demo --keep-serving`: who may sign in (the API's
//! tokens, their scopes mapped onto UI access), and what the UI asks of the delivery side (a
//! test delivery sent now, the worker woken after a redelivery).

use std::sync::Arc;

use djinn_hook_deliver::{DeliverConfig, Deliverer, WorkerWaker};
use djinn_hook_server::ui::{Auth, UiState};
use djinn_hook_server::{StoreActions, Tokens};
use djinn_hook_store::Store;

/// The UI over `store`: signing in with `tokens` (none: the loopback mode, no sign-in), test
/// deliveries sent like `hook test`'s, redeliveries waking the worker through `waker`.
pub(crate) fn state(
    store: &Arc<Store>,
    tokens: &Arc<Tokens>,
    waker: WorkerWaker,
    allow_private_network: bool,
    base_url: Option<&str>,
) -> anyhow::Result<UiState> {
    let auth = if tokens.is_empty() {
        Auth::Open
    } else {
        let tokens = Arc::clone(tokens);
        Auth::Tokens(Arc::new(move |token| tokens.ui_access(token)))
    };
    let mut config = DeliverConfig::default();
    config.allow_private_network = allow_private_network;
    let deliverer = Deliverer::new(config);
    let actions = StoreActions::new(Arc::clone(store), deliverer, Some(waker));
    let ui = UiState::new(Arc::clone(store), auth, Arc::new(actions))?;
    Ok(match base_url {
        Some(url) => ui.with_public_url(url),
        None => ui,
    })
}
