//! [`Reply`]: a success answer (or an error's body) as the API writes it: pretty JSON with a
//! trailing newline, or no body, with a few headers.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The `Content-Type` of every JSON answer.
const JSON: &str = "application/json; charset=utf-8";

/// An answer to send.
#[derive(Debug)]
pub(crate) struct Reply {
    status: StatusCode,
    content_type: Option<&'static str>,
    headers: Vec<(HeaderName, String)>,
    body: Vec<u8>,
}

impl Reply {
    /// Pretty JSON with a trailing newline.
    pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Reply {
        let mut body = serde_json::to_vec_pretty(value).expect("API values serialise");
        body.push(b'\n');
        Reply {
            status,
            content_type: Some(JSON),
            headers: Vec::new(),
            body,
        }
    }

    /// `{"message": …}`, the original's error shape.
    pub(crate) fn message(status: StatusCode, message: impl Into<String>) -> Reply {
        #[derive(Serialize)]
        struct Message {
            message: String,
        }
        Reply::json(
            status,
            &Message {
                message: message.into(),
            },
        )
    }

    /// Any bytes with their content type.
    pub(crate) fn bytes(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type: Some(content_type),
            headers: Vec::new(),
            body,
        }
    }

    /// No body.
    pub(crate) fn empty(status: StatusCode) -> Reply {
        Reply {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: HeaderName, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        if let Some(content_type) = self.content_type {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        for (name, value) in self.headers {
            // Values are built here from ids and URLs; one that is not a valid header is left out.
            if let Ok(value) = HeaderValue::try_from(value) {
                headers.append(name, value);
            }
        }
        response
    }
}
