//! Routing: a request path (the original's URL shapes) to a [`Route`], and the methods each allows.
//!
//! Namespaced paths are `/n/:username/:path/-/…`: the path may have several segments (child
//! namespaces), which is why the `/-/` separator exists. Segments are percent-decoded.

use axum::http::Method;

use crate::paths::percent_decode;

/// Where a request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/healthz`
    Healthz,
    /// `/metrics`
    Metrics,
    /// `/n/:username/:path/-/webhooks`
    Webhooks { ns: String },
    /// `/n/:username/:path/-/webhooks/:id`
    Webhook { ns: String, id: i64 },
    /// `/n/:username/:path/-/webhooks/:id/rotate-secret`
    RotateSecret { ns: String, id: i64 },
    /// `/n/:username/:path/-/webhooks/:id/deliveries`
    Deliveries { ns: String, id: i64 },
    /// `/n/:username/:path/-/webhooks/:id/deliveries/:delivery_id`
    Delivery { ns: String, id: i64, delivery: i64 },
    /// `/n/:username/:path/-/webhooks/:id/deliveries/:delivery_id/redeliver`
    Redeliver { ns: String, id: i64, delivery: i64 },
    /// `/n/:username/:path/-/events`
    Events { ns: String },
}

impl Route {
    /// The route of a path (without the query), or `None` for an unknown path.
    pub(crate) fn parse(path: &str) -> Option<Route> {
        let path = path
            .strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path);
        match path {
            "/healthz" => return Some(Route::Healthz),
            "/metrics" => return Some(Route::Metrics),
            _ => {}
        }
        let rest = path.strip_prefix("/n/")?;
        let (ns, resource) = rest.split_once("/-/")?;
        let ns = namespace(ns)?;
        let parts: Vec<&str> = resource.split('/').collect();
        let route = match parts.as_slice() {
            ["webhooks"] => Route::Webhooks { ns },
            ["events"] => Route::Events { ns },
            ["webhooks", id] => Route::Webhook { ns, id: id_of(id)? },
            ["webhooks", id, "rotate-secret"] => Route::RotateSecret { ns, id: id_of(id)? },
            ["webhooks", id, "deliveries"] => Route::Deliveries { ns, id: id_of(id)? },
            ["webhooks", id, "deliveries", delivery] => Route::Delivery {
                ns,
                id: id_of(id)?,
                delivery: id_of(delivery)?,
            },
            ["webhooks", id, "deliveries", delivery, "redeliver"] => Route::Redeliver {
                ns,
                id: id_of(id)?,
                delivery: id_of(delivery)?,
            },
            _ => return None,
        };
        Some(route)
    }

    /// The namespace the route is in, if any.
    pub(crate) fn namespace(&self) -> Option<&str> {
        match self {
            Route::Healthz | Route::Metrics => None,
            Route::Webhooks { ns }
            | Route::Webhook { ns, .. }
            | Route::RotateSecret { ns, .. }
            | Route::Deliveries { ns, .. }
            | Route::Delivery { ns, .. }
            | Route::Redeliver { ns, .. }
            | Route::Events { ns } => Some(ns),
        }
    }

    /// The methods the route answers (the `Allow` header of a 405).
    pub(crate) fn allowed(&self) -> &'static [Method] {
        match self {
            Route::Healthz | Route::Metrics | Route::Deliveries { .. } | Route::Delivery { .. } => {
                &[Method::GET]
            }
            Route::Webhooks { .. } => &[Method::GET, Method::POST],
            Route::Webhook { .. } => &[Method::GET, Method::PATCH, Method::DELETE],
            Route::RotateSecret { .. } | Route::Redeliver { .. } | Route::Events { .. } => {
                &[Method::POST]
            }
        }
    }
}

/// Whether a request with `method` has a body to read.
pub(crate) fn takes_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PATCH)
}

/// `username/path…` percent-decoded, at least two non-empty segments.
fn namespace(raw: &str) -> Option<String> {
    let segments: Vec<String> = raw
        .split('/')
        .map(percent_decode)
        .collect::<Option<Vec<_>>>()?;
    if segments.len() < 2
        || segments
            .iter()
            .any(|s| s.trim().is_empty() || s.contains('/'))
    {
        return None;
    }
    Some(segments.join("/"))
}

/// A positive decimal id.
fn id_of(raw: &str) -> Option<i64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok().filter(|&id| id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> String {
        s.to_owned()
    }

    #[test]
    fn routes_of_the_original_url_shapes() {
        let cases = [
            ("/healthz", Some(Route::Healthz)),
            ("/metrics/", Some(Route::Metrics)),
            (
                "/n/alice/ci/-/webhooks",
                Some(Route::Webhooks { ns: ns("alice/ci") }),
            ),
            (
                "/n/alice/parent/child/-/webhooks/",
                Some(Route::Webhooks {
                    ns: ns("alice/parent/child"),
                }),
            ),
            (
                "/n/alice/ci/-/webhooks/7",
                Some(Route::Webhook {
                    ns: ns("alice/ci"),
                    id: 7,
                }),
            ),
            (
                "/n/alice/ci/-/webhooks/7/deliveries",
                Some(Route::Deliveries {
                    ns: ns("alice/ci"),
                    id: 7,
                }),
            ),
            (
                "/n/alice/ci/-/webhooks/7/deliveries/9",
                Some(Route::Delivery {
                    ns: ns("alice/ci"),
                    id: 7,
                    delivery: 9,
                }),
            ),
            (
                "/n/alice/ci/-/webhooks/7/deliveries/9/redeliver",
                Some(Route::Redeliver {
                    ns: ns("alice/ci"),
                    id: 7,
                    delivery: 9,
                }),
            ),
            (
                "/n/alice/ci/-/webhooks/7/rotate-secret",
                Some(Route::RotateSecret {
                    ns: ns("alice/ci"),
                    id: 7,
                }),
            ),
            (
                "/n/al%20ice/c%2Fi/-/events",
                None, // an encoded slash would change the namespace's shape
            ),
            (
                "/n/al%20ice/ci/-/events",
                Some(Route::Events {
                    ns: ns("al ice/ci"),
                }),
            ),
            ("/n/alice/-/webhooks", None),
            ("/n/alice//ci/-/webhooks", None),
            ("/n/alice/ci/-/webhooks/0", None),
            ("/n/alice/ci/-/webhooks/-1", None),
            ("/n/alice/ci/-/webhooks/x", None),
            ("/n/alice/ci/-/webhooks/99999999999999999999", None),
            ("/n/alice/ci/-/builds", None),
            ("/n/alice/ci/webhooks", None),
            ("/", None),
            ("/n/alice/ci/-/webhooks/1/deliveries/%zz", None),
        ];
        for (path, want) in cases {
            assert_eq!(Route::parse(path), want, "{path}");
        }
    }

    /// Property tests: any path parses without a panic, and the API's URLs of any namespace
    /// the store accepts and any ids parse back to them (parse ∘ print = identity); a query
    /// string built from a key and any value gives the value back. Cases: proptest's default
    /// (256 per property); `PROPTEST_CASES=100000 cargo test -p djinn-hook-server --lib
    /// props` runs more.
    mod props {
        use proptest::prelude::*;

        use super::super::*;
        use crate::paths::{Urls, query_param};

        proptest! {
            #[test]
            fn any_path_parses_without_a_panic(path in "\\PC{0,60}") {
                let _ = Route::parse(&path);
                let _ = percent_decode(&path);
                let _ = query_param(&path, "page");
            }

            #[test]
            fn the_apis_urls_parse_back(
                segments in prop::collection::vec(prop_oneof!["[^/\\p{Cc}]{1,8}", Just("-".to_owned())], 2..5)
                    .prop_filter("no blank segment", |s| s.iter().all(|s| !s.trim().is_empty())),
                id in 1..i64::MAX,
                delivery in 1..i64::MAX,
            ) {
                let ns = segments.join("/");
                let urls = Urls { base: String::new() };
                prop_assert_eq!(
                    Route::parse(&urls.webhooks(&ns)),
                    Some(Route::Webhooks { ns: ns.clone() })
                );
                prop_assert_eq!(
                    Route::parse(&format!("{}/", urls.webhook(&ns, id))),
                    Some(Route::Webhook { ns: ns.clone(), id })
                );
                prop_assert_eq!(
                    Route::parse(&format!("{}/redeliver", urls.delivery(&ns, id, delivery))),
                    Some(Route::Redeliver { ns: ns.clone(), id, delivery })
                );
                prop_assert_eq!(
                    Route::parse(&format!("{}/rotate-secret", urls.webhook(&ns, id))),
                    Some(Route::RotateSecret { ns, id })
                );
            }

            #[test]
            fn a_query_value_reads_back(
                key in "[a-z_]{1,8}",
                value in "\\PC{0,20}",
                other in "[a-z]{0,5}=[a-z0-9%+]{0,5}",
            ) {
                let encoded: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair(&key, &value)
                    .finish();
                // Were `other` the same key, its value would win: the first one counts.
                prop_assume!(other.split('=').next() != Some(key.as_str()));
                let query = format!("{other}&{encoded}");
                prop_assert_eq!(query_param(&query, &key), Some(value));
            }
        }
    }
}
