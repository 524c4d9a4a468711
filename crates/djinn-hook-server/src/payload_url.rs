//! A payload URL as a user edits it, the same in the API, the web UI and the command line:
//! every one of them shows a stored URL's user-info as `***`, so what comes back may be that
//! mask rather than new credentials.

use djinn_hook_payload::redact_userinfo;

/// The payload URL to store for `posted` when the webhook's is `stored`: the stored one (with
/// its user-info) when `posted` is what the API and the UI show of it (user-info as `***`), so
/// a webhook read and written back unchanged keeps its credentials; else `posted`.
pub fn kept_payload_url(posted: &str, stored: &str) -> String {
    let shown = redact_userinfo(stored);
    if posted.trim() == shown && shown != stored {
        stored.to_owned()
    } else {
        posted.to_owned()
    }
}

/// What is wrong with a payload URL to store whose user-info is the mask `***` (what
/// [`kept_payload_url`] leaves when the URL was changed around it): the stored credentials
/// are kept only for the URL exactly as shown, so they are never sent to another address by
/// someone who cannot read them.
pub fn masked_userinfo(url: &str) -> Option<&'static str> {
    let url = url.trim();
    let masked = url
        .split_once("://")
        .is_some_and(|(_, rest)| rest.starts_with("***@"))
        && redact_userinfo(url) == url;
    masked.then_some(
        "has *** for its credentials: they are kept only when the URL is otherwise unchanged; \
         type them again to change the URL",
    )
}
