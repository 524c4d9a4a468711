//! The Webhooks tab over a demo database, until Ctrl-C: what `serve` and `demo
//! --keep-serving` wire up, in one file.
//!
//! ```sh
//! cargo run -p djinn-hook-server --example ui_demo            # http://127.0.0.1:8080/ui/
//! cargo run -p djinn-hook-server --example ui_demo -- 127.0.0.1:0
//! ```
//!
//! A fresh store in a temporary folder, one webhook to a verifying receiver on loopback,
//! the 15 example events delivered by the worker; then the UI in the loopback no-token mode,
//! with test deliveries sent by the deliverer and redeliveries by the worker, woken.

use std::sync::Arc;

use djinn_hook_deliver::{DeliverConfig, Deliverer, RetryPolicy, Shutdown, Worker, WorkerConfig};
use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_server::ui::{self, Auth, UiState};
use djinn_hook_server::{Receiver, StoreActions};
use djinn_hook_sign::Secret;
use djinn_hook_store::{NewEvent, NewWebhook, SecretKey, Store};

const NAMESPACE: &str = "wallace.breen/blackmesa";

fn deliverer() -> Deliverer {
    // The receiver is on loopback: the SSRF guard must let private addresses through.
    let mut config = DeliverConfig::default();
    config.allow_private_network = true;
    Deliverer::new(config)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(
        dir.path().join("demo.db"),
        SecretKey::generate()?,
    )?);
    let receiver = Receiver::start("127.0.0.1:0", Secret::new("demo-secret"))?;
    store.ensure_namespace(NAMESPACE)?;
    let mut hook = NewWebhook::new(NAMESPACE, receiver.url());
    hook.secret = Some("demo-secret".into());
    store.create_webhook(hook)?;
    store.accept_events(
        EventType::ALL
            .iter()
            .map(|&event| {
                NewEvent::new(
                    NAMESPACE,
                    event,
                    example_payload(event, DEFAULT_API_SERVER).to_body(),
                )
            })
            .collect(),
    )?;

    // The worker, in the background for the life of the process; the UI wakes it.
    let worker = Worker::new(
        Arc::clone(&store),
        deliverer(),
        RetryPolicy::default(),
        WorkerConfig::default(),
    );
    let waker = worker.waker();
    // Never set: the worker runs as long as the process.
    let never = Shutdown::new();
    std::thread::spawn(move || worker.run(&never));

    let actions = StoreActions::new(Arc::clone(&store), deliverer(), Some(waker));
    let state = UiState::new(Arc::clone(&store), Auth::Open, Arc::new(actions))?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let addr = listener.local_addr()?;
    println!("the Webhooks tab: http://{addr}/ui/n/{NAMESPACE}/-/webhooks (Ctrl-C stops)");
    axum::serve(listener, ui::router(state)).await?;
    Ok(())
}
