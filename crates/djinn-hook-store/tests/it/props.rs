//! Property tests of what the store parses from outside: namespace paths (`owner/a/b`) and
//! payload URLs. Never a panic, an error naming the value or the field, and what is accepted
//! reads back the same (a namespace) or is a URL the HTTP client parses (a payload URL).
//!
//! Cases: proptest's default (256 per property); `PROPTEST_CASES=100000 cargo test -p
//! djinn-hook-store --test it props` runs more.

use std::sync::LazyLock;

use djinn_hook_store::{Error, NewWebhook, Store};
use proptest::prelude::*;

use crate::support::key;

/// One in-memory store for all cases: each case writes names of its own.
static STORE: LazyLock<Store> = LazyLock::new(|| Store::open_in_memory(key()).unwrap());

fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,30}",
        "[a-z.]{1,8}(/[a-z0-9 _.-]{0,8}){0,4}",
        "[ /]{0,3}[a-z]{0,4}[/\t\n ]{0,3}[a-z]{0,4}/?",
        // Dot segments and backslashes, which a URL path would resolve into another namespace.
        "[a-z]{1,3}(/(\\.|\\.\\.|[a-z.\\\\]{1,4})){1,4}",
    ]
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "(https?|HTTP|ftp)?(://)?([a-z:]{0,8}@)?[a-zA-Z0-9.\u{e0}-\u{ff}\u{4e00}-\u{4e10}-]{0,16}(:[0-9]{0,7})?(/[a-z%?#@\\[\\]{}|^\"<> ]{0,10})?",
        "https?://\\[[0-9a-f:.]{0,20}\\]?(:[0-9]{1,6})?/?",
    ]
}

proptest! {
    #[test]
    fn namespace_paths(name in namespace()) {
        match STORE.ensure_namespace(&name) {
            Ok(ns) => {
                prop_assert_eq!(&ns.name, &name);
                prop_assert!(
                    !name.contains('\\') && name.split('/').all(|s| s != "." && s != ".."),
                    "{name:?} would change in a URL path"
                );
                prop_assert_eq!(format!("{}/{}", ns.owner(), ns.path()), name.clone());
                prop_assert_eq!(STORE.namespace(&name).unwrap(), Some(ns.clone()));
                // Its parent chain exists, up to `owner/first`.
                if let Some((parent, _)) = name.rsplit_once('/')
                    && parent.contains('/')
                {
                    prop_assert_eq!(
                        STORE.namespace(parent).unwrap().map(|p| p.id),
                        ns.parent_id
                    );
                }
            }
            Err(Error::InvalidNamespace { namespace, reason }) => {
                prop_assert_eq!(namespace, name);
                prop_assert!(!reason.is_empty());
            }
            Err(other) => prop_assert!(false, "{name:?}: {other}"),
        }
    }

    #[test]
    fn payload_urls(url in url()) {
        STORE.ensure_namespace("props/urls").unwrap();
        match STORE.create_webhook(NewWebhook::new("props/urls", &url)) {
            Ok(hook) => {
                let stored = &hook.payload_url;
                prop_assert!(stored.is_ascii(), "{stored:?}");
                let uri = http::Uri::try_from(stored.as_str());
                prop_assert!(uri.is_ok(), "{stored:?}: {uri:?}");
                let uri = uri.unwrap();
                let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
                prop_assert!(scheme == "http" || scheme == "https", "{stored:?}");
                prop_assert!(uri.host().is_some_and(|h| !h.is_empty()), "{stored:?}");
                prop_assert_eq!(hook.ssl, scheme == "https");
                STORE.delete_webhook(hook.id).unwrap();
            }
            Err(Error::Invalid(errors)) => {
                let fields: Vec<&str> = errors.iter().map(|(field, _)| field).collect();
                prop_assert_eq!(fields, ["payload_url"], "{:?}", url);
            }
            Err(other) => prop_assert!(false, "{url:?}: {other}"),
        }
    }
}
