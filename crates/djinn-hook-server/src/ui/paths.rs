//! The UI's namespace paths: `/ui/n/{owner/path}/-/webhooks/...`, parsed and built.
//!
//! A namespace has two or more segments, so the webhook part starts after a `/-/`
//! separator, as in the JSON API's `/n/{owner/path}/-/webhooks`. Paths are parsed as sent
//! (percent-encoded), so a namespace segment that is `-` itself, written `%2D`, is not taken
//! for the separator.

use crate::paths::encode_segment;

/// What a path below `/ui/n/` names.
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
}

/// The namespace and target of `rest`, the path after `/ui/n/` as sent: each namespace
/// segment is percent-decoded (a bad escape, or an encoded `/` that would change the
/// namespace's shape, is no path).
pub(crate) fn parse(rest: &str) -> Option<(String, Target)> {
    let (ns, tail) = rest.split_once("/-/")?;
    let names: Vec<String> = ns
        .split('/')
        .map(crate::paths::percent_decode)
        .collect::<Option<_>>()?;
    // `.` and `..` segments would be folded away by a browser resolving a link to them.
    if names.len() < 2
        || names
            .iter()
            .any(|s| matches!(s.as_str(), "" | "." | "..") || s.contains('/'))
    {
        return None;
    }
    let segments: Vec<&str> = tail.trim_end_matches('/').split('/').collect();
    let id = |s: &str| s.parse::<i64>().ok().filter(|id| *id > 0);
    let target = match segments.as_slice() {
        ["webhooks"] => Target::List,
        ["webhooks", "create"] => Target::Create,
        ["webhooks", hook] => Target::Hook(id(hook)?),
        ["webhooks", hook, "delete"] => Target::Delete(id(hook)?),
        ["webhooks", hook, "test"] => Target::Test(id(hook)?),
        ["webhooks", hook, "rotate-secret"] => Target::RotateSecret(id(hook)?),
        ["webhooks", hook, "deliveries", d] => Target::Delivery(id(hook)?, id(d)?),
        ["webhooks", hook, "deliveries", d, "redeliver"] => Target::Redeliver(id(hook)?, id(d)?),
        _ => return None,
    };
    Some((names.join("/"), target))
}

/// `/ui/n/{ns}/-/webhooks`, each segment of `ns` percent-encoded as the API's links are: all but
/// RFC 3986's unreserved characters, so a backslash (which a browser reads as `/`) is `%5C`,
/// and a segment that is `-` itself is `%2D`, lest it read as the separator.
pub(crate) fn webhooks(ns: &str) -> String {
    let ns: Vec<String> = ns.split('/').map(encode_segment).collect();
    format!("{}/n/{}/-/webhooks", super::PREFIX, ns.join("/"))
}

/// The edit page of webhook `id` in `ns`.
pub(crate) fn hook(ns: &str, id: i64) -> String {
    format!("{}/{id}", webhooks(ns))
}

/// One delivery's page.
pub(crate) fn delivery(ns: &str, id: i64, delivery: i64) -> String {
    format!("{}/deliveries/{delivery}", hook(ns, id))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "a/b/webhooks",
            "a/b/-/webhooks/x",
            "a/b/-/webhooks/0",
            "a/b/-/webhooks/7/nope",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(webhooks("a b/c?d"), "/ui/n/a%20b/c%3Fd/-/webhooks");
        // A browser reads `\` as `/`: raw, this link would resolve to `/ui/n/bob/ci/...`.
        assert_eq!(
            webhooks(r"alice/ci/x\..\..\..\bob\ci"),
            "/ui/n/alice/ci/x%5C..%5C..%5C..%5Cbob%5Cci/-/webhooks"
        );
        assert_eq!(webhooks("a/-"), "/ui/n/a/%2D/-/webhooks");
        assert_eq!(delivery("a/b", 7, 9), "/ui/n/a/b/-/webhooks/7/deliveries/9");
        check("a%20b/c%3Fd/-/webhooks", "a b/c?d", Target::List);
        check("a/%2D/-/webhooks/7", "a/-", Target::Hook(7));
        for bad in ["a/b%2Fc/-/webhooks", "a/%zz/-/webhooks", "a/%FF/-/webhooks"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    /// Any path parses without a panic, and the UI's links to any namespace the store accepts
    /// parse back to it (parse ∘ print = identity). Cases: proptest's default (256 per
    /// property); `PROPTEST_CASES=100000 cargo test -p djinn-hook-server --lib props` runs more.
    mod props {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn any_path_parses_without_a_panic(rest in "\\PC{0,60}") {
                let _ = parse(&rest);
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
            ) {
                let ns = segments.join("/");
                let below = |path: &str| path.strip_prefix("/ui/n/").unwrap().to_owned();
                prop_assert_eq!(parse(&below(&webhooks(&ns))), Some((ns.clone(), Target::List)));
                prop_assert_eq!(parse(&below(&hook(&ns, id))), Some((ns.clone(), Target::Hook(id))));
                prop_assert_eq!(
                    parse(&below(&delivery(&ns, id, delivery_id))),
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
            ) {
                let ns = segments.join("/");
                let base = url::Url::parse("http://ui.test/ui/").unwrap();
                for link in [webhooks(&ns), hook(&ns, id)] {
                    let resolved = base.join(&link).unwrap();
                    prop_assert_eq!(resolved.path(), link.as_str());
                    prop_assert_eq!(resolved.query(), None);
                }
            }
        }
    }
}
