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
    let mut config = DeliverConfig::default();
    config.connect_timeout = Duration::from_secs(2);
    config.timeout = Duration::from_secs(5);
    config.allow_private_network = true;
    config
}

/// A first attempt of `build.finished` for webhook 42, no secret.
fn request(url: &str) -> DeliveryRequest {
    DeliveryRequest::new(
        42,
        Uuid::new_v4(),
        EventType::BuildFinished,
        url,
        br#"{"id":1,"status":"passed"}"#.to_vec(),
    )
}
