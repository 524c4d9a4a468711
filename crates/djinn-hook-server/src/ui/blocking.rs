//! The one way the UI calls the store (and the delivery side): off the async threads.

use djinn_hook_store::Store;

use super::error::UiError;
use super::state::UiState;

/// Runs `f` with the store on tokio's blocking pool: every store call blocks (SQLite).
pub(crate) async fn store<T, E>(
    state: &UiState,
    f: impl FnOnce(&Store) -> Result<T, E> + Send + 'static,
) -> Result<T, UiError>
where
    T: Send + 'static,
    E: Into<UiError> + Send + 'static,
{
    let store = std::sync::Arc::clone(&state.inner.store);
    run(move || f(&store)).await?.map_err(Into::into)
}

/// Runs blocking `f` on tokio's blocking pool.
pub(crate) async fn run<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, UiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|err| UiError::Internal(format!("a background task failed: {err}")))
}
