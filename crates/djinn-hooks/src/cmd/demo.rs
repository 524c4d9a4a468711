//! `demo`: the whole path on loopback in one command, with a table of what happened.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use djinn_hook_deliver::{Outcome, WorkerEvent};
use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_server::Receiver;
use djinn_hook_server::{Config, Tokens};
use djinn_hook_sign::Verifier;
use djinn_hook_store::{DeliveryFilter, NewEvent, NewWebhook, Page, SecretKey, Store};

use super::output::{self, Table};
use super::store::{self, StoreResult as _};
use super::{Global, Invalid, invalid};
use crate::cli::DemoArgs;

/// The demo's database when `--db` is not given; it is replaced on every run.
pub(crate) const DEMO_DB: &str = "djinn-demo.db";

/// The namespace the demo's webhook and events belong to.
const NAMESPACE: &str = "wallace.breen/blackmesa";

/// What the demo saw of one event.
#[derive(Debug, Default, Clone)]
struct Row {
    status: Option<u16>,
    duration: Duration,
    delivered: bool,
    error: Option<String>,
    received: bool,
    signature_ok: bool,
}

/// Runs `demo`.
pub(crate) fn run(global: &Global, args: &DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let db = fresh_db(global)?;
    let key_file = global.key_file.as_deref();
    if global.db.is_none() && key_file.is_none() {
        // The default demo database is replaced, its key file with it.
        remove_if_exists(&SecretKey::file_beside(&db))?;
    }

    // A fresh random secret for the webhook; the receiver checks with the same.
    let secret: String = SecretKey::generate()
        .or_fail()?
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let receiver = Receiver::start("127.0.0.1:0", Verifier::new(&secret)?)?;

    let store = Arc::new(store::open_at(&db, key_file)?);
    store.ensure_namespace(NAMESPACE).or_fail()?;
    let mut new = NewWebhook::new(NAMESPACE, receiver.url());
    new.secret = Some(secret);
    let hook = super::hook::create_in(&store, new)?;
    if !global.json {
        outln!(
            "demo: receiver on http://{}, webhook {} in {NAMESPACE} (secret: random, not shown)",
            receiver.addr(),
            hook.id
        );
    }

    let events: Vec<NewEvent> = EventType::ALL
        .iter()
        .map(|&event| {
            NewEvent::new(
                NAMESPACE,
                event,
                example_payload(event, DEFAULT_API_SERVER).to_body(),
            )
        })
        .collect();
    let accepted = store.accept_events(events).or_fail()?;
    let by_id: HashMap<uuid::Uuid, EventType> = accepted
        .iter()
        .zip(EventType::ALL)
        .map(|(a, e)| (a.event_id, e))
        .collect();
    if !global.json {
        outln!(
            "demo: emitted {} example events; delivering (signed, private networks allowed for this loopback receiver)",
            accepted.len()
        );
    }

    let rows: Mutex<HashMap<EventType, Row>> = Mutex::new(HashMap::new());
    let worker = super::worker::worker(&store, 4, true, super::worker::UNTIL_IDLE_POLL)
        .with_observer(|event| {
            if let WorkerEvent::Completed(done) = event {
                let mut rows = rows
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let row = rows.entry(done.attempt.event).or_default();
                row.status = done.attempt.response_status;
                row.duration = done.attempt.duration;
                row.delivered = done.decision.outcome == Outcome::Delivered;
                row.error.clone_from(&done.attempt.error);
            }
        });
    worker.run_until_idle();
    drop(worker);
    let mut rows = rows
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);

    for got in receiver.drain() {
        let event = got
            .delivery()
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
            .and_then(|id| by_id.get(&id));
        if let Some(event) = event {
            let row = rows.entry(*event).or_default();
            row.received = true;
            row.signature_ok = got.signature_valid;
        }
    }

    let mut table = Table::new(&["event", "status", "duration", "signature ok"]);
    let mut json = Vec::new();
    let mut bad = 0;
    for event in EventType::ALL {
        let row = rows.get(&event).cloned().unwrap_or_default();
        if !(row.delivered && row.signature_ok) {
            bad += 1;
        }
        json.push(serde_json::json!({
            "event": event,
            "status": row.status,
            "duration": u64::try_from(row.duration.as_nanos()).unwrap_or(u64::MAX),
            "error": row.error,
            "delivered": row.delivered,
            "received": row.received,
            "signature_ok": row.signature_ok,
        }));
        table.row(vec![
            event.to_string(),
            match (row.status, &row.error) {
                (Some(status), _) => status.to_string(),
                (None, Some(error)) => error.clone(),
                (None, None) => "not delivered".to_owned(),
            },
            output::duration(row.duration),
            match (row.received, row.signature_ok) {
                (false, _) => "not received".to_owned(),
                (true, true) => "yes".to_owned(),
                (true, false) => "NO".to_owned(),
            },
        ]);
    }
    let first = store
        .deliveries(DeliveryFilter::hook(hook.id), Page::new(1))
        .or_fail()?
        .items
        .last()
        .map_or(1, |d| d.id);
    if global.json {
        output::print_json(&serde_json::json!({
            "db": db,
            "hook_id": hook.id,
            "namespace": NAMESPACE,
            "deliveries": json,
            "ok": bad == 0,
        }))?;
    } else {
        outln!();
        table.print();
        outln!();
        // The follow-up commands as the user can run them (`cargo run` puts no
        // djinn-hooks on the PATH), with the database and key file of this run.
        let mut command = format!("{} --db {}", output::program(), output::shell_word(&db));
        if let Some(key_file) = key_file {
            command.push_str(" --key-file ");
            command.push_str(&output::shell_word(key_file));
        }
        outln!(
            "{} of {} events delivered and verified in {}. Look further:",
            EventType::ALL.len() - bad,
            EventType::ALL.len(),
            output::duration(started.elapsed())
        );
        outln!("  {command} deliveries list");
        outln!("  {command} deliveries show {first}");
        outln!("  {command} hook list");
    }
    if bad > 0 {
        anyhow::bail!(
            "{bad} of {} events were not delivered with a valid signature",
            EventType::ALL.len()
        );
    }
    if let Some(listen) = &args.keep_serving {
        // The receiver stays up too, so test deliveries and redeliveries from the UI arrive.
        keep_serving(&store, listen)?;
    }
    drop(receiver);
    Ok(())
}

/// `--keep-serving`: `serve` on `listen` over the demo's database, the web UI included, until
/// Ctrl-C; the address of the Webhooks tab is printed first.
fn keep_serving(store: &Arc<Store>, listen: &str) -> anyhow::Result<()> {
    let no_tokens = Tokens::new([])?;
    let mut config =
        Config::new(listen, no_tokens).map_err(|err| Invalid(format!("--keep-serving {err}")))?;
    djinn_hook_server::log::install();
    let stop = super::worker::stop_on_signal()?;
    let worker = super::worker::worker(store, 4, true, super::serve::POLL_INTERVAL);
    config.ui = Some(super::web_ui::state(
        store,
        &config.tokens,
        worker.waker(),
        true,
        None,
    )?);
    outln!();
    outln!("The Webhooks tab, until Ctrl-C: http://{listen}/ui/n/{NAMESPACE}/-/webhooks");
    djinn_hook_server::serve(config, Arc::clone(store), worker, &stop)?;
    Ok(())
}

/// The demo's database: `--db` if given (it must not exist yet), else
/// `djinn-demo.db`, replaced on every run.
fn fresh_db(global: &Global) -> anyhow::Result<PathBuf> {
    match &global.db {
        Some(db) => {
            if db.to_str().is_some_and(djinn_hook_store::is_postgres_url) {
                super::invalid!("--db: the demo runs on a fresh SQLite file, not PostgreSQL");
            }
            if db.exists() {
                invalid!(
                    "--db: {} exists; the demo needs a fresh database (leave --db out to use {DEMO_DB})",
                    db.display()
                );
            }
            Ok(db.clone())
        }
        None => {
            let db = PathBuf::from(DEMO_DB);
            for suffix in ["", "-wal", "-shm"] {
                let mut name = db.as_os_str().to_owned();
                name.push(suffix);
                remove_if_exists(Path::new(&name))?;
            }
            Ok(db)
        }
    }
}

fn remove_if_exists(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => {
            Err(anyhow::Error::new(err).context(format!("cannot remove {}", path.display())))
        }
    }
}
