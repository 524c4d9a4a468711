//! The UI's paths: what a path below `{mount}/ui/n/` names ([`Target`], read with the
//! crate's one [`NamespacePath`] parser), and [`Links`], every link, form action, redirect
//! and cookie path the UI writes, below the path it is mounted at.
//!
//! The mount is where an application nests the UI's router (`Router::nest("/hooks", …)`):
//! empty when the UI is served at the root. axum strips it from the request's `Uri` and keeps
//! the whole path in `OriginalUri`; the difference is the mount, so no configuration is
//! needed and the UI works under any prefix, parameters included.

use axum::extract::OriginalUri;
use axum::http::request::Parts;

use super::error::UiError;
use crate::paths::{NamespacePath, Resource, Urls, id_of};

/// What a path below `/ui/n/{ns}/-/` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// `webhooks`
    List,
    /// `webhooks/create`
    Create,
    /// `webhooks/{id}`
    Hook(i64),
    /// `webhooks/{id}/delete`
    Delete(i64),
    /// `webhooks/{id}/test`
    Test(i64),
    /// `webhooks/{id}/rotate-secret`
    RotateSecret(i64),
    /// `webhooks/{id}/deliveries/{delivery}`
    Delivery(i64, i64),
    /// `webhooks/{id}/deliveries/{delivery}/redeliver`
    Redeliver(i64, i64),
    /// `webhooks/{id}/recover`
    Recover(i64),
}

impl Resource for Target {
    const BELOW: &'static str = super::PREFIX;
    type Rejection = UiError;

    fn parse(segments: &[&str]) -> Option<Target> {
        Some(match segments {
            ["webhooks"] => Target::List,
            ["webhooks", "create"] => Target::Create,
            ["webhooks", hook] => Target::Hook(id_of(hook)?),
            ["webhooks", hook, "delete"] => Target::Delete(id_of(hook)?),
            ["webhooks", hook, "test"] => Target::Test(id_of(hook)?),
            ["webhooks", hook, "rotate-secret"] => Target::RotateSecret(id_of(hook)?),
            ["webhooks", hook, "recover"] => Target::Recover(id_of(hook)?),
            ["webhooks", hook, "deliveries", d] => Target::Delivery(id_of(hook)?, id_of(d)?),
            ["webhooks", hook, "deliveries", d, "redeliver"] => {
                Target::Redeliver(id_of(hook)?, id_of(d)?)
            }
            _ => return None,
        })
    }

    /// A namespace with a `.` or `..` segment has no page: no link can name it (a browser
    /// folds such a segment away, `%2E` included), so a path with one was not written by this
    /// UI. (The API lets the store refuse such a name, with a message naming the segment.)
    fn names(segments: &[String]) -> bool {
        segments.iter().all(|s| s != "." && s != "..")
    }

    fn rejection(path: &str) -> UiError {
        let rest = path.strip_prefix("/ui/n/").unwrap_or(path);
        UiError::NotFound(format!("no webhooks page for namespace {rest:?}"))
    }
}

/// The page `path` names (below the mount, as sent), or `None`.
pub(crate) fn page(path: &str) -> Option<NamespacePath<Target>> {
    NamespacePath::parse(path)
}

/// Every path the UI writes, below where it is mounted. Cheap to clone; the guard makes one
/// per request and hands it to handlers as a request extension.
#[derive(Clone, Debug)]
pub(crate) struct Links {
    /// The mount, without a trailing slash: `""` at the root, else e.g. `/hooks`.
    mount: String,
    /// `{mount}/ui`, for the namespace paths.
    ui: Urls,
}

impl Links {
    /// The links of a UI mounted at `mount` (`""`, or a path such as `/hooks`).
    pub(crate) fn at(mount: &str) -> Links {
        let mount = mount.trim_end_matches('/').to_owned();
        Links {
            ui: Urls {
                base: format!("{mount}{}", super::PREFIX),
            },
            mount,
        }
    }

    /// The links of the request `parts`, from the mount axum stripped off its path (see the
    /// module's doc); `None` when that mount is not a plain path (see [`plain_mount`]).
    pub(crate) fn of(parts: &Parts) -> Option<Links> {
        let inner = parts.uri.path();
        let mount = match parts.extensions.get::<OriginalUri>() {
            None => "",
            Some(OriginalUri(original)) => {
                let full = original.path();
                match full.strip_suffix(inner) {
                    Some(mount) => mount,
                    // Nested at `/hooks`, the request for `/hooks` itself is `/` inside.
                    None if inner == "/" => full,
                    None => return None,
                }
            }
        };
        plain_mount(mount).then(|| Links::at(mount))
    }

    /// `{mount}/ui`: the path every UI path starts with, and the session cookie's `Path`.
    pub(crate) fn root(&self) -> &str {
        &self.ui.base
    }

    /// `{mount}/ui/`: the index.
    pub(crate) fn home(&self) -> String {
        format!("{}/", self.ui.base)
    }

    /// `{mount}/ui/signin`.
    pub(crate) fn signin(&self) -> String {
        format!("{}/signin", self.ui.base)
    }

    /// `{mount}/ui/signout`.
    pub(crate) fn signout(&self) -> String {
        format!("{}/signout", self.ui.base)
    }

    /// `{mount}/ui/go`: the index's "open a namespace" form.
    pub(crate) fn go(&self) -> String {
        format!("{}/go", self.ui.base)
    }

    /// `{mount}/ui/assets/style.css`.
    pub(crate) fn stylesheet(&self) -> String {
        format!("{}/assets/style.css", self.ui.base)
    }

    /// `path`, a path of the UI as the mounted router sees it (`/ui/…`), below the mount.
    pub(crate) fn below_mount(&self, path: &str) -> String {
        format!("{}{path}", self.mount)
    }

    /// `{mount}/ui/n/{ns}/-/webhooks`, each segment of `ns` percent-encoded as the API's
    /// links are: all but RFC 3986's unreserved characters, so a backslash (which a browser
    /// reads as `/`) is `%5C`, and a segment that is `-` itself is `%2D`, lest it read as the
    /// separator.
    pub(crate) fn webhooks(&self, ns: &str) -> String {
        self.ui.webhooks(ns)
    }

    /// The create form of `ns`.
    pub(crate) fn create(&self, ns: &str) -> String {
        format!("{}/create", self.ui.webhooks(ns))
    }

    /// The edit page of webhook `id` in `ns`.
    pub(crate) fn hook(&self, ns: &str, id: i64) -> String {
        self.ui.webhook(ns, id)
    }

    /// One delivery's page.
    pub(crate) fn delivery(&self, ns: &str, id: i64, delivery: i64) -> String {
        self.ui.delivery(ns, id, delivery)
    }
}

/// Whether `mount` is a path the UI can be mounted at: empty, or `/`-separated segments, none
/// empty, `.` or `..`, of characters that stand in a URL path, a `Location` and a cookie's
/// `Path` as they are (no `;`, `,`, quote, backslash, space or control character). Its links,
/// redirects and cookie would otherwise lead elsewhere than the mount. Only a route parameter
/// in the mount (`Router::nest("/{org}", …)`) can bring a request's own text here.
pub(crate) fn plain_mount(mount: &str) -> bool {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+=:@".contains(&b);
    mount.is_empty()
        || mount.strip_prefix('/').is_some_and(|rest| {
            rest.split('/').all(|s| {
                let dots = s.to_ascii_lowercase().replace("%2e", ".");
                !s.is_empty() && dots != "." && dots != ".." && s.bytes().all(plain)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(rest: &str) -> Option<(String, Target)> {
        page(&format!("/ui/n/{rest}")).map(|p| (p.ns, p.at))
    }

    #[test]
    fn paths_parse_and_build() {
        let check = |path: &str, ns: &str, target: Target| {
            assert_eq!(parse(path), Some((ns.to_owned(), target)), "{path}");
        };
        check("alice/ci/-/webhooks", "alice/ci", Target::List);
        check("alice/ci/-/webhooks/", "alice/ci", Target::List);
        check("a/b/c/-/webhooks/create", "a/b/c", Target::Create);
        check("a/b/-/webhooks/7", "a/b", Target::Hook(7));
        check("a/b/-/webhooks/7/delete", "a/b", Target::Delete(7));
        check("a/b/-/webhooks/7/test", "a/b", Target::Test(7));
        check(
            "a/b/-/webhooks/7/rotate-secret",
            "a/b",
            Target::RotateSecret(7),
        );
        check(
            "a/b/-/webhooks/7/deliveries/9",
            "a/b",
            Target::Delivery(7, 9),
        );
        check(
            "a/b/-/webhooks/7/deliveries/9/redeliver",
            "a/b",
            Target::Redeliver(7, 9),
        );
        for bad in [
            "alice/-/webhooks",
            "a//b/-/webhooks",
            "a/../-/webhooks",
            "./b/-/webhooks",
            "a/%2E/-/webhooks",
            "a/b/webhooks",
            "a/b/-/webhooks/x",
            "a/b/-/webhooks/0",
            "a/b/-/webhooks/+7",
            "a/b/-/webhooks/7/nope",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        let root = Links::at("");
        assert_eq!(root.webhooks("a b/c?d"), "/ui/n/a%20b/c%3Fd/-/webhooks");
        // A browser reads `\` as `/`: raw, this link would resolve to `/ui/n/bob/ci/...`.
        assert_eq!(
            root.webhooks(r"alice/ci/x\..\..\..\bob\ci"),
            "/ui/n/alice/ci/x%5C..%5C..%5C..%5Cbob%5Cci/-/webhooks"
        );
        assert_eq!(root.webhooks("a/-"), "/ui/n/a/%2D/-/webhooks");
        assert_eq!(
            root.delivery("a/b", 7, 9),
            "/ui/n/a/b/-/webhooks/7/deliveries/9"
        );
        check("a%20b/c%3Fd/-/webhooks", "a b/c?d", Target::List);
        check("a/%2D/-/webhooks/7", "a/-", Target::Hook(7));
        for bad in ["a/b%2Fc/-/webhooks", "a/%zz/-/webhooks", "a/%FF/-/webhooks"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn links_start_with_the_mount() {
        let nested = Links::at("/hooks/");
        assert_eq!(nested.root(), "/hooks/ui");
        assert_eq!(nested.home(), "/hooks/ui/");
        assert_eq!(nested.stylesheet(), "/hooks/ui/assets/style.css");
        assert_eq!(nested.hook("a/b", 7), "/hooks/ui/n/a/b/-/webhooks/7");
        assert_eq!(nested.below_mount("/ui/signin"), "/hooks/ui/signin");
        for plain in ["", "/hooks", "/ci/v1/hooks", "/org%20x", "/a:b@c"] {
            assert!(plain_mount(plain), "{plain}");
        }
        for bad in [
            "hooks",
            "/",
            "//evil.example",
            "/a//b",
            "/a/..",
            "/a/%2E%2e",
            "/./a",
            "/a;b",
            "/a,b",
            "/a b",
            "/a\\b",
            "/a\"b",
            "/a\r\nb",
        ] {
            assert!(!plain_mount(bad), "{bad:?}");
        }
    }

    /// Any path parses without a panic, and the UI's links to any namespace the store accepts
    /// parse back to it (parse ∘ print = identity). Cases: proptest's default (256 per
    /// property); `PROPTEST_CASES=100000 cargo test -p djinn-hook-server --lib props` runs more.
    mod props {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn any_path_parses_without_a_panic(rest in "\\PC{0,60}") {
                let _ = parse(&rest);
                let _ = plain_mount(&rest);
            }

            #[test]
            fn the_uis_links_parse_back(
                segments in prop::collection::vec(
                    prop_oneof![
                        "[^/\\p{Cc}]{1,8}",
                        "[a-z.\\\\%]{1,6}",
                        Just("-".to_owned()),
                        Just("%2D".to_owned()),
                    ],
                    2..5,
                )
                .prop_filter("a namespace a link can keep", |s| {
                    s.iter().all(|s| !s.trim().is_empty() && s != "." && s != "..")
                }),
                id in 1..i64::MAX,
                delivery_id in 1..i64::MAX,
                mount in prop_oneof![Just(String::new()), "(/[a-z0-9%-]{1,6}){1,3}"],
            ) {
                let ns = segments.join("/");
                let links = Links::at(&mount);
                let below = |path: &str| {
                    path.strip_prefix(&format!("{mount}/ui/n/")).unwrap().to_owned()
                };
                let list = parse(&below(&links.webhooks(&ns)));
                prop_assert_eq!(list, Some((ns.clone(), Target::List)));
                let hook = parse(&below(&links.hook(&ns, id)));
                prop_assert_eq!(hook, Some((ns.clone(), Target::Hook(id))));
                prop_assert_eq!(
                    parse(&below(&links.delivery(&ns, id, delivery_id))),
                    Some((ns, Target::Delivery(id, delivery_id)))
                );
            }

            /// What a browser makes of a link is the link itself: no backslash read as `/`, no
            /// dot segment folded, whatever the namespace (stored before the store refused
            /// such names, too), unless a segment is `.` or `..` itself, which no encoding
            /// keeps (`%2E` is a dot segment to a browser as well).
            #[test]
            fn a_browser_resolves_the_uis_links_to_themselves(
                segments in prop::collection::vec(
                    prop_oneof!["[a-z.\\\\%?#;:\\p{Cc} -]{1,6}", "[^/]{1,4}"],
                    2..5,
                )
                .prop_filter("no dot segment", |s| s.iter().all(|s| s != "." && s != "..")),
                id in 1..i64::MAX,
                mount in prop_oneof![Just(String::new()), "(/[a-z0-9%-]{1,6}){1,3}"],
            ) {
                prop_assume!(plain_mount(&mount));
                let ns = segments.join("/");
                let links = Links::at(&mount);
                let base = url::Url::parse("http://ui.test/ui/").unwrap();
                for link in [links.webhooks(&ns), links.hook(&ns, id)] {
                    let resolved = base.join(&link).unwrap();
                    prop_assert_eq!(resolved.path(), link.as_str());
                    prop_assert_eq!(resolved.query(), None);
                }
            }
        }
    }
}
