//! The API's routes: a request path (the original's URL shapes) to a [`Route`], and a route
//! and a method to the [`Call`] that answers them.
//!
//! Namespaced paths are `/n/:username/:path/-/…` ([`NamespacePath`]): the path may have
//! several segments (child namespaces), which is why the `/-/` separator exists.

use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::request::Parts;
use djinn_hook_payload::EventType;

use crate::error::ApiError;
use crate::paths::{NamespacePath, Resource, id_of};

/// Where a request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/healthz`
    Healthz,
    /// `/metrics`
    Metrics,
    /// `/readyz`
    Readyz,
    /// `/openapi.json`
    OpenApi,
    /// `/schemas/<event>.json`
    Schema(EventType),
    /// `/n/:username/:path/-/events`
    Events { ns: String },
    /// `/n/:username/:path/-/events/batch`
    EventBatch { ns: String },
    /// `/n/:username/:path/-/webhooks…`: the store's webhooks and deliveries.
    Hooks { ns: String, at: HookPath },
}

/// What is below `/n/:username/:path/-/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ApiPath {
    /// `events`
    Events,
    /// `events/batch`
    EventBatch,
    /// `webhooks…`
    Hooks(HookPath),
}

/// What is below `/n/:username/:path/-/webhooks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HookPath {
    /// `webhooks`
    Webhooks,
    /// `webhooks/:id`
    Webhook(i64),
    /// `webhooks/:id/rotate-secret`
    RotateSecret(i64),
    /// `webhooks/:id/deliveries`
    Deliveries(i64),
    /// `webhooks/:id/deliveries/:delivery_id`
    Delivery(i64, i64),
    /// `webhooks/:id/deliveries/:delivery_id/redeliver`
    Redeliver(i64, i64),
    /// `webhooks/:id/recover`
    Recover(i64),
}

/// What a request on a [`HookPath`] asks of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    ListWebhooks,
    CreateWebhook,
    ShowWebhook(i64),
    UpdateWebhook(i64),
    DeleteWebhook(i64),
    RotateSecret(i64),
    ListDeliveries(i64),
    ShowDelivery(i64, i64),
    Redeliver(i64, i64),
    Recover(i64),
}

impl Resource for ApiPath {
    const BELOW: &'static str = "";
    type Rejection = ApiError;

    fn parse(segments: &[&str]) -> Option<ApiPath> {
        let hook = match segments {
            ["events"] => return Some(ApiPath::Events),
            ["events", "batch"] => return Some(ApiPath::EventBatch),
            ["webhooks"] => HookPath::Webhooks,
            ["webhooks", id] => HookPath::Webhook(id_of(id)?),
            ["webhooks", id, "rotate-secret"] => HookPath::RotateSecret(id_of(id)?),
            ["webhooks", id, "recover"] => HookPath::Recover(id_of(id)?),
            ["webhooks", id, "deliveries"] => HookPath::Deliveries(id_of(id)?),
            ["webhooks", id, "deliveries", d] => HookPath::Delivery(id_of(id)?, id_of(d)?),
            ["webhooks", id, "deliveries", d, "redeliver"] => {
                HookPath::Redeliver(id_of(id)?, id_of(d)?)
            }
            _ => return None,
        };
        Some(ApiPath::Hooks(hook))
    }

    fn rejection(_: &str) -> ApiError {
        ApiError::NoRoute
    }
}

impl Route {
    /// The route of a path (without the query), or `None` for an unknown path.
    pub(crate) fn parse(path: &str) -> Option<Route> {
        match path {
            "/healthz" | "/healthz/" => return Some(Route::Healthz),
            "/metrics" | "/metrics/" => return Some(Route::Metrics),
            "/readyz" | "/readyz/" => return Some(Route::Readyz),
            "/openapi.json" => return Some(Route::OpenApi),
            _ => {}
        }
        if let Some(name) = path
            .strip_prefix("/schemas/")
            .and_then(|rest| rest.strip_suffix(".json"))
        {
            return EventType::from_name(name).ok().map(Route::Schema);
        }
        let NamespacePath { ns, at } = NamespacePath::<ApiPath>::parse(path)?;
        Some(match at {
            ApiPath::Events => Route::Events { ns },
            ApiPath::EventBatch => Route::EventBatch { ns },
            ApiPath::Hooks(at) => Route::Hooks { ns, at },
        })
    }

    /// The namespace the route is in, if any.
    pub(crate) fn namespace(&self) -> Option<&str> {
        match self {
            Route::Healthz | Route::Metrics | Route::Readyz | Route::OpenApi | Route::Schema(_) => {
                None
            }
            Route::Events { ns } | Route::EventBatch { ns } | Route::Hooks { ns, .. } => Some(ns),
        }
    }

    /// Whether anyone may ask for this route, without a token: liveness, readiness and the
    /// documents.
    pub(crate) fn is_public(&self) -> bool {
        matches!(
            self,
            Route::Healthz | Route::Readyz | Route::OpenApi | Route::Schema(_)
        )
    }

    /// The methods the route answers (the `Allow` header of a 405).
    pub(crate) fn allowed(&self) -> Vec<Method> {
        match self {
            Route::Healthz | Route::Metrics | Route::Readyz | Route::OpenApi | Route::Schema(_) => {
                vec![Method::GET]
            }
            Route::Events { .. } | Route::EventBatch { .. } => vec![Method::POST],
            Route::Hooks { at, .. } => [Method::GET, Method::POST, Method::PATCH, Method::DELETE]
                .into_iter()
                .filter(|method| at.call(method).is_some())
                .collect(),
        }
    }
}

impl HookPath {
    /// What `method` on this path asks, or `None` if it is not allowed here.
    pub(crate) fn call(self, method: &Method) -> Option<Call> {
        use HookPath as P;
        Some(match (self, method.clone()) {
            (P::Webhooks, Method::GET) => Call::ListWebhooks,
            (P::Webhooks, Method::POST) => Call::CreateWebhook,
            (P::Webhook(id), Method::GET) => Call::ShowWebhook(id),
            (P::Webhook(id), Method::PATCH) => Call::UpdateWebhook(id),
            (P::Webhook(id), Method::DELETE) => Call::DeleteWebhook(id),
            (P::RotateSecret(id), Method::POST) => Call::RotateSecret(id),
            (P::Deliveries(id), Method::GET) => Call::ListDeliveries(id),
            (P::Delivery(id, d), Method::GET) => Call::ShowDelivery(id, d),
            (P::Redeliver(id, d), Method::POST) => Call::Redeliver(id, d),
            (P::Recover(id), Method::POST) => Call::Recover(id),
            _ => return None,
        })
    }
}

/// The request's route, or 404 ([`ApiError::NoRoute`]).
impl<S: Send + Sync> FromRequestParts<S> for Route {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Route, ApiError> {
        Route::parse(parts.uri.path()).ok_or(ApiError::NoRoute)
    }
}

/// Whether a request with `method` has a body to read.
pub(crate) fn takes_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> String {
        s.to_owned()
    }

    fn hooks(namespace: &str, at: HookPath) -> Option<Route> {
        Some(Route::Hooks {
            ns: ns(namespace),
            at,
        })
    }

    #[test]
    fn routes_of_the_original_url_shapes() {
        use HookPath as P;
        let cases = [
            ("/healthz", Some(Route::Healthz)),
            ("/metrics/", Some(Route::Metrics)),
            ("/n/alice/ci/-/webhooks", hooks("alice/ci", P::Webhooks)),
            (
                "/n/alice/parent/child/-/webhooks/",
                hooks("alice/parent/child", P::Webhooks),
            ),
            ("/n/alice/ci/-/webhooks/7", hooks("alice/ci", P::Webhook(7))),
            (
                "/n/alice/ci/-/webhooks/7/deliveries",
                hooks("alice/ci", P::Deliveries(7)),
            ),
            (
                "/n/alice/ci/-/webhooks/7/deliveries/9",
                hooks("alice/ci", P::Delivery(7, 9)),
            ),
            (
                "/n/alice/ci/-/webhooks/7/deliveries/9/redeliver",
                hooks("alice/ci", P::Redeliver(7, 9)),
            ),
            (
                "/n/alice/ci/-/webhooks/7/rotate-secret",
                hooks("alice/ci", P::RotateSecret(7)),
            ),
            (
                "/n/alice/ci/-/webhooks/7/recover",
                hooks("alice/ci", P::Recover(7)),
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
            ("/n/a/%2D/-/webhooks", hooks("a/-", P::Webhooks)),
            ("/n/alice/-/webhooks", None),
            ("/n/alice//ci/-/webhooks", None),
            ("/n/alice/%20/-/webhooks", None),
            ("/n/alice/ci/-/webhooks/0", None),
            ("/n/alice/ci/-/webhooks/-1", None),
            ("/n/alice/ci/-/webhooks/+1", None),
            ("/n/alice/ci/-/webhooks/x", None),
            ("/n/alice/ci/-/webhooks/99999999999999999999", None),
            ("/n/alice/ci/-/webhooks//", None),
            ("/n/alice/ci/-/builds", None),
            (
                "/n/alice/ci/-/events/batch/",
                Some(Route::EventBatch { ns: ns("alice/ci") }),
            ),
            ("/n/alice/ci/-/events/other", None),
            ("/n/alice/ci/webhooks", None),
            ("/", None),
            ("/n/alice/ci/-/webhooks/1/deliveries/%zz", None),
            ("/n/alice/ci/-/webhooks/1/deliveries/%FF", None),
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
        use crate::paths::{Urls, percent_decode, query_param};

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
                let hooks = |at| Some(Route::Hooks { ns: ns.clone(), at });
                prop_assert_eq!(Route::parse(&urls.webhooks(&ns)), hooks(HookPath::Webhooks));
                prop_assert_eq!(
                    Route::parse(&format!("{}/", urls.webhook(&ns, id))),
                    hooks(HookPath::Webhook(id))
                );
                prop_assert_eq!(
                    Route::parse(&format!("{}/redeliver", urls.delivery(&ns, id, delivery))),
                    hooks(HookPath::Redeliver(id, delivery))
                );
                prop_assert_eq!(
                    Route::parse(&format!("{}/rotate-secret", urls.webhook(&ns, id))),
                    hooks(HookPath::RotateSecret(id))
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
