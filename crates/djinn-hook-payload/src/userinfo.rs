//! URLs as they may be shown: the user-info (`user:password@`) of a payload URL is a credential
//! (the HTTP client sends it as basic auth), so records, errors, logs and `Debug` carry `***` in
//! its place. Here, the lowest crate, because the store and the delivery crate both show URLs.

use std::borrow::Cow;
use std::ops::Range;

/// What replaces the user-info.
const MASK: &str = "***";

/// `url` with its user-info replaced by `***`: `https://user:pw@host/` gives
/// `https://***@host/`. Unchanged (borrowed) when there is none; works on any string, so an
/// invalid URL is redacted too.
///
/// ```
/// use djinn_hook_payload::redact_userinfo;
///
/// assert_eq!(redact_userinfo("https://ci:s3cret@hooks.example/x"), "https://***@hooks.example/x");
/// assert_eq!(redact_userinfo("https://hooks.example/a@b"), "https://hooks.example/a@b");
/// ```
pub fn redact_userinfo(url: &str) -> Cow<'_, str> {
    match userinfo(url) {
        Some(range) => Cow::Owned(format!(
            "{}{MASK}{}",
            &url[..range.start],
            &url[range.end..]
        )),
        None => Cow::Borrowed(url),
    }
}

/// `text` (an error message, say) with every copy of `url`'s user-info, and of its password
/// alone, replaced by `***`.
pub fn scrub_userinfo(text: String, url: &str) -> String {
    let Some(range) = userinfo(url) else {
        return text;
    };
    let info = &url[range];
    let password = info
        .split_once(':')
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty());
    let text = text.replace(info, MASK);
    match password {
        Some(password) => text.replace(password, MASK),
        None => text,
    }
}

/// Where the user-info of `url` is: between `://` and the last `@` of the authority.
fn userinfo(url: &str) -> Option<Range<usize>> {
    let start = url.find("://")? + 3;
    let authority = url[start..].split(['/', '?', '#']).next()?;
    let at = authority.rfind('@')?;
    Some(start..start + at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_only_the_authority_user_info() {
        for (url, shown) in [
            ("http://u:p@h/", "http://***@h/"),
            ("http://u@h:8080", "http://***@h:8080"),
            ("http://@h/", "http://***@h/"),
            ("HTTPS://a:b@c@h/x?y@z#w@v", "HTTPS://***@h/x?y@z#w@v"),
            ("http://h/p@q", "http://h/p@q"),
            ("http://h?x=a@b", "http://h?x=a@b"),
            ("no scheme u:p@h", "no scheme u:p@h"),
            ("", ""),
        ] {
            assert_eq!(redact_userinfo(url), shown, "{url}");
        }
    }

    #[test]
    fn scrubs_the_user_info_from_text() {
        let url = "http://user:hunter2@h/";
        assert_eq!(
            scrub_userinfo(format!("bad uri: {url}, password hunter2"), url),
            "bad uri: http://***@h/, password ***"
        );
        assert_eq!(scrub_userinfo("x".to_owned(), "http://h/"), "x");
    }
}
