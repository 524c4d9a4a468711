//! The `/n/{namespace}/-/…` paths of the API and the UI: the URL builder, each segment's
//! percent-encoding and decoding, and a query string's values.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Builds the API's absolute URLs.
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
