//! The request bytes of a delivery, encoded by `ureq-proto` as ureq encodes them: the
//! attempt's headers in their order, then `Content-Length`, then the body.

use ureq::http::{HeaderValue, Request, Uri, header};
use ureq_proto::client::state::RecvResponse;
use ureq_proto::client::{Await100Result, Call, SendRequestResult};

/// The request's bytes and the call, ready to read the response once they are sent.
pub(crate) fn encode(
    uri: &Uri,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(Vec<u8>, Call<RecvResponse>), ureq::Error> {
    let mut builder = Request::post(uri.clone());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut call = Call::new(builder.body(())?)?;
    call.header(header::CONTENT_LENGTH, HeaderValue::from(body.len()))?;
    let mut call = call.proceed();
    let head_estimate = 128
        + uri.to_string().len()
        + headers
            .iter()
            .map(|(name, value)| name.len() + value.len() + 4)
            .sum::<usize>();
    let mut output = Vec::with_capacity(head_estimate + body.len());
    let mut chunk = [0_u8; 1024];
    while !call.can_proceed() {
        let n = call.write(&mut chunk)?;
        output.extend_from_slice(&chunk[..n]);
    }
    let send_body = match call.proceed()?.expect("the head is written") {
        SendRequestResult::RecvResponse(call) => return Ok((output, call)),
        SendRequestResult::SendBody(call) => call,
        // Never asked for (no `Expect` header): go on with the body.
        SendRequestResult::Await100(call) => match call.proceed()? {
            Await100Result::SendBody(call) => call,
            Await100Result::RecvResponse(call) => return Ok((output, call)),
        },
    };
    let mut send_body = send_body;
    output.extend_from_slice(body);
    send_body.consume_direct_write(body.len())?;
    let call = send_body.proceed().expect("the whole body is written");
    Ok((output, call))
}
