//! The `/n/{namespace}/-/…` paths of the API and the UI, parsed in one place and built in one
//! place: [`NamespacePath`] (also an axum extractor) reads them, [`Urls`] writes them, with one
//! segment encoding and one decoding.
//!
//! A namespace has two or more segments (`owner/path…`), so what follows it starts after a
//! `/-/` separator. Paths are read as sent (percent-encoded), so a namespace segment that is
//! `-` itself, written `%2D`, is not taken for the separator, and an encoded `/` (which would
//! change the namespace's shape) is no path. Whether a name is a valid namespace is the
//! store's to say, with a message naming what is wrong; a path only has to have its shape.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What follows a namespace's `/-/` in the paths of one surface (the API's, the UI's).
pub(crate) trait Resource: Sized {
    /// Where the `/n/…` paths start below the root of the surface's router: `""` for the
    /// API, `/ui` for the UI.
    const BELOW: &'static str;
    /// The answer to a path that names nothing.
    type Rejection: IntoResponse;

    /// The resource named by the segments after `/-/` (as sent), or `None`.
    fn parse(segments: &[&str]) -> Option<Self>;

    /// Whether this surface has paths for the namespace of these (decoded) segments, beyond
    /// the shape every namespace path has. Yes unless the surface says otherwise.
    fn names(_segments: &[String]) -> bool {
        true
    }

    /// The answer to `path`, which names nothing.
    fn rejection(path: &str) -> Self::Rejection;
}

/// A path `{R::BELOW}/n/{namespace}/-/{resource}`: the namespace percent-decoded, the
/// resource typed. One trailing `/` is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NamespacePath<R> {
    /// `owner/path…`, decoded.
    pub(crate) ns: String,
    /// What in the namespace.
    pub(crate) at: R,
}

impl<R: Resource> NamespacePath<R> {
    /// The namespace path `path` names (below the surface's router, as sent), or `None`.
    pub(crate) fn parse(path: &str) -> Option<NamespacePath<R>> {
        let path = path.strip_suffix('/').unwrap_or(path);
        let rest = path.strip_prefix(R::BELOW)?.strip_prefix("/n/")?;
        let (ns, resource) = rest.split_once("/-/")?;
        let names: Vec<String> = ns.split('/').map(percent_decode).collect::<Option<_>>()?;
        if names.len() < 2
            || names.iter().any(|s| s.trim().is_empty() || s.contains('/'))
            || !R::names(&names)
        {
            return None;
        }
        let segments: Vec<&str> = resource.split('/').collect();
        Some(NamespacePath {
            ns: names.join("/"),
            at: R::parse(&segments)?,
        })
    }
}

/// The request's path as the surface's router sees it (below any `Router::nest`).
impl<S: Send + Sync, R: Resource + Send> FromRequestParts<S> for NamespacePath<R> {
    type Rejection = R::Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let path = parts.uri.path();
        NamespacePath::parse(path).ok_or_else(|| R::rejection(path))
    }
}

/// A positive decimal id, digits only.
pub(crate) fn id_of(raw: &str) -> Option<i64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok().filter(|&id| id > 0)
}

/// Builds the `/n/…` URLs below a base: the API's absolute URLs (the base is the API's base
/// URL), and the UI's links (the base is where the UI is: `/ui`, or `/hooks/ui` when nested
/// at `/hooks`).
#[derive(Clone, Debug)]
pub struct Urls {
    /// The base, without a trailing slash, e.g. `http://127.0.0.1:8080`.
    pub base: String,
}

impl Urls {
    /// `/n/:username/:path`, each segment percent-encoded where needed.
    pub fn namespace(&self, ns: &str) -> String {
        let path: Vec<String> = ns.split('/').map(encode_segment).collect();
        format!("{}/n/{}", self.base, path.join("/"))
    }

    /// `/n/:username/:path/-/webhooks`
    pub fn webhooks(&self, ns: &str) -> String {
        format!("{}/-/webhooks", self.namespace(ns))
    }

    /// `/n/:username/:path/-/webhooks/:id`
    pub fn webhook(&self, ns: &str, id: i64) -> String {
        format!("{}/{id}", self.webhooks(ns))
    }

    /// `/n/:username/:path/-/webhooks/:id/deliveries`
    pub fn deliveries(&self, ns: &str, id: i64) -> String {
        format!("{}/deliveries", self.webhook(ns, id))
    }

    /// `/n/:username/:path/-/webhooks/:id/deliveries/:delivery_id`
    pub fn delivery(&self, ns: &str, id: i64, delivery: i64) -> String {
        format!("{}/{delivery}", self.deliveries(ns, id))
    }
}

/// What is percent-encoded in a segment of the API's URLs: all but RFC 3986's unreserved
/// characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes what may not stand in a path segment as is. A segment that is exactly `-`
/// is encoded too (`%2D`): as is, it would read as the `/-/` that ends the namespace.
pub(crate) fn encode_segment(segment: &str) -> String {
    if segment == "-" {
        return "%2D".to_owned();
    }
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// Decodes `%XX` escapes; `None` for a bad escape or bytes that are not UTF-8.
pub(crate) fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The value of `name` in a query string (`a=1&page=2`), percent-decoded.
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| percent_decode(&value.replace('+', " ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_segments() {
        let urls = Urls {
            base: "http://h".to_owned(),
        };
        assert_eq!(
            urls.delivery("al ice/a/b", 1, 2),
            "http://h/n/al%20ice/a/b/-/webhooks/1/deliveries/2"
        );
        // RFC 3986's unreserved characters stay; anything else, UTF-8 included, is encoded.
        assert_eq!(
            urls.namespace("café/a-b.c_d~e+f"),
            "http://h/n/caf%C3%A9/a-b.c_d~e%2Bf"
        );
    }

    #[test]
    fn query_params() {
        assert_eq!(query_param("page=2", "page").as_deref(), Some("2"));
        assert_eq!(query_param("a=1&page=3", "page").as_deref(), Some("3"));
        assert_eq!(query_param("page", "page").as_deref(), Some(""));
        assert_eq!(query_param("pages=3", "page"), None);
    }
}
