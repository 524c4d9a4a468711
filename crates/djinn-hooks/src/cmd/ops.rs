//! What `serve` and `worker` tell the operator: the OpenTelemetry exporter they install (the
//! library crates only make spans) and the notification webhook they configure in the store.

use std::time::Duration;

use anyhow::Context as _;
use djinn_hook_store::{NotificationTarget, Store};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

use super::Invalid;
use super::store::StoreResult as _;
use crate::cli::OpsArgs;

/// How long one export may take (the exporter retries a failed batch itself).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The installed exporter: flushed and shut down when dropped, as the process ends.
pub(crate) struct Telemetry {
    provider: SdkTracerProvider,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        // Spans still in the batch go out now; a collector that is gone costs the timeout.
        let _ = self.provider.shutdown();
    }
}

/// With `--otlp-endpoint`, installs OpenTelemetry's global tracer provider (an OTLP/HTTP
/// exporter behind the SDK's batch processor, on a thread of its own) and the log subscriber
/// with spans exported through it. Without, nothing: not a span is exported, and the log is
/// installed as before (by `process::register`).
pub(crate) fn telemetry(
    args: &OpsArgs,
    service: &'static str,
) -> anyhow::Result<Option<Telemetry>> {
    let Some(base) = args
        .otlp_endpoint
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    else {
        return Ok(None);
    };
    let endpoint = traces_url(base)?;
    let exporter = SpanExporter::builder()
        .with_http()
        .with_http_client(UreqClient::new())
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .context("--otlp-endpoint: the exporter")?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_id_generator(djinn_hook_server::AttemptIds)
        .with_resource(
            Resource::builder()
                .with_service_name(format!("djinn-hooks {service}"))
                .build(),
        )
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    djinn_hook_server::log::install_with_tracer(provider.tracer("djinn-hooks"));
    Ok(Some(Telemetry { provider }))
}

/// `<base>/v1/traces`, as the OTLP specification builds the traces URL from
/// `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn traces_url(base: &str) -> anyhow::Result<String> {
    let uri: http::Uri = base
        .trim()
        .parse()
        .map_err(|err| Invalid(format!("--otlp-endpoint: {base:?}: {err}")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(Invalid(format!(
            "--otlp-endpoint: {base:?}: expected an http(s) URL"
        ))
        .into());
    }
    Ok(format!("{}/v1/traces", base.trim().trim_end_matches('/')))
}

/// With `--notify-url`, makes it the store's notification webhook (see
/// `Store::set_notification_webhook`), and sets how long a breaker stays open before the
/// operator is told. Without it the store's notification webhook is left as it is (another
/// process on the store may have configured it).
pub(crate) fn notifications(store: &Store, args: &OpsArgs) -> anyhow::Result<()> {
    let Some(url) = &args.notify_url else {
        return Ok(());
    };
    let mut target = NotificationTarget::new(url.clone());
    if let Some(path) = &args.notify_secret_file {
        let secret = std::fs::read_to_string(path)
            .map_err(|err| Invalid(format!("--notify-secret-file {}: {err}", path.display())))?;
        target.secret = Some(secret.trim_end_matches(['\r', '\n']).to_owned());
    }
    target.standard_webhooks = args.notify_standard_webhooks;
    store
        .set_notification_webhook(Some(target))
        .or_fail()
        .context("--notify-url")?;
    store.set_breaker_notice_after(Some(args.notify_breaker_after));
    Ok(())
}

/// The exporter's HTTP client: ureq, the blocking client the rest of the binary sends with.
/// The SDK's batch processor exports on a thread of its own, blocked on each export, so a
/// blocking call is what it waits for anyway; no async runtime or second HTTP stack is needed.
#[derive(Debug)]
struct UreqClient(ureq::Agent);

impl UreqClient {
    fn new() -> UreqClient {
        let agent = ureq::Agent::config_builder()
            // The exporter reads the status itself (a 4xx or 5xx is its error to report).
            .http_status_as_error(false)
            .timeout_global(Some(EXPORT_TIMEOUT))
            .build()
            .into();
        UreqClient(agent)
    }
}

#[async_trait::async_trait]
impl HttpClient for UreqClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let request = Request::from_parts(parts, body.to_vec());
        let response = self.0.run(request)?;
        let (parts, mut body) = response.into_parts();
        let bytes = body.read_to_vec()?;
        Ok(Response::from_parts(parts, Bytes::from(bytes)))
    }
}
