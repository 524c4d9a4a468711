//! An axum extractor that lets a handler run only for a verified delivery.

use axum_core::extract::{FromRef, FromRequest, Request};
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::{RequestError, Verified, Verifier};

/// A delivery whose signatures a [`Verifier`] from the router's state accepted: its headers
/// and exact body.
///
/// A request that does not verify is answered `401 Unauthorized` with the reason as plain text
/// (it names the header, never a secret); a body that cannot be read gets axum's own answer
/// (`413` over the router's body limit).
///
/// ```
/// use axum::{Router, routing::post};
/// use djinn_hook_sign::{VerifiedDelivery, Verifier};
///
/// async fn hook(delivery: VerifiedDelivery) -> &'static str {
///     println!("{} bytes", delivery.body.len());
///     "thanks"
/// }
///
/// let app: Router = Router::new()
///     .route("/hook", post(hook))
///     .with_state(Verifier::new("s3cret").unwrap());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifiedDelivery {
    /// The request's headers (`X-Djinn-CI-Event`, `X-Djinn-CI-Delivery`, ... in
    /// [`headers`](crate::headers)).
    pub headers: HeaderMap,
    /// The exact body that was signed.
    pub body: Bytes,
    /// Which schemes it passed with.
    pub verified: Verified,
}

/// The answer to a request that was not a verified delivery.
#[derive(Debug)]
#[non_exhaustive]
pub enum DeliveryRejection {
    /// The body could not be read.
    Body(Response),
    /// The signatures did not verify.
    Unverified(RequestError),
}

impl IntoResponse for DeliveryRejection {
    fn into_response(self) -> Response {
        match self {
            DeliveryRejection::Body(response) => response,
            DeliveryRejection::Unverified(error) => {
                let reason = match &error {
                    RequestError::Invalid { source, .. } => format!("{error}: {source}"),
                    _ => error.to_string(),
                };
                (StatusCode::UNAUTHORIZED, reason).into_response()
            }
        }
    }
}

impl<S> FromRequest<S> for VerifiedDelivery
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = DeliveryRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Verifier::from_ref(state);
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| DeliveryRejection::Body(rejection.into_response()))?;
        let verified = verifier
            .verify(&headers, &body)
            .map_err(DeliveryRejection::Unverified)?;
        Ok(VerifiedDelivery {
            headers,
            body,
            verified,
        })
    }
}
