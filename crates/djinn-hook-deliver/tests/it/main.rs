//! Integration tests of djinn-hook-deliver against real servers on 127.0.0.1.

// Test helpers are `pub` for the sibling modules only.
#![allow(unreachable_pub, reason = "helpers shared between test modules")]

mod deliver;
mod engine;
mod memory_outbox;
mod retry;
mod server;
mod ssrf;
mod ssrf_registry;
mod tls;
mod worker;

use std::time::Duration;

use djinn_hook_deliver::{DeliverConfig, Deliverer, DeliveryRequest};
use djinn_hook_payload::EventType;
use uuid::Uuid;

/// A deliverer that may reach 127.0.0.1, with short timeouts.
fn local_deliverer() -> Deliverer {
    Deliverer::new(local_config())
}

fn local_config() -> DeliverConfig {
    DeliverConfig {
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        allow_private_network: true,
        ..DeliverConfig::default()
    }
}

/// A first attempt of `build.finished` for webhook 42, no secret.
fn request(url: &str) -> DeliveryRequest {
    DeliveryRequest {
        hook_id: 42,
        event_id: Uuid::new_v4(),
        event: EventType::BuildFinished,
        url: url.to_owned(),
        ssl: true,
        secret: None,
        previous_secret: None,
        standard_webhooks: false,
        body: br#"{"id":1,"status":"passed"}"#.to_vec(),
        attempt: 1,
        redelivery: false,
        timeout: None,
    }
}
