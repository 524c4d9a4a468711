//! `deliveries list|show` and `redeliver`: the delivery log.

use djinn_hook_payload::redact_userinfo;
use djinn_hook_store::{Delivery, DeliveryFilter, Page, Recovery};

use super::output::{self, Table};
use super::store::{self, StoreResult as _};
use super::{Global, invalid};
use crate::cli::{DeliveriesCommand, RedeliverArgs};
use crate::entity_json::{DeliveryFullJson, DeliveryJson, PageJson, RedeliveryJson};

/// Runs a `deliveries` subcommand.
pub(crate) fn run(global: &Global, command: DeliveriesCommand) -> anyhow::Result<()> {
    match command {
        DeliveriesCommand::List {
            hook,
            event,
            failed,
            test,
            no_test,
            page,
        } => {
            let test = match (test, no_test) {
                (true, _) => Some(true),
                (false, true) => Some(false),
                (false, false) => None,
            };
            list(global, hook, event.as_deref(), failed, test, page)
        }
        DeliveriesCommand::Show { id } => show(global, id),
    }
}

fn list(
    global: &Global,
    hook: Option<i64>,
    event: Option<&str>,
    failed: bool,
    test: Option<bool>,
    page: u32,
) -> anyhow::Result<()> {
    let event_id = match event.map(uuid::Uuid::parse_str) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => invalid!(
            "--event: {:?} is not an event id (a UUID)",
            event.unwrap_or("")
        ),
    };
    if page == 0 {
        invalid!("--page: pages count from 1");
    }
    let store = store::open(global)?;
    let mut filter = DeliveryFilter::default();
    filter.hook_id = hook;
    filter.event_id = event_id;
    filter.event_type = None;
    filter.failed_only = failed;
    filter.test = test;
    let paged = store.deliveries(filter, Page::new(page)).or_fail()?;
    if global.json {
        return output::print_json(&PageJson {
            items: paged
                .items
                .iter()
                .map(|d| DeliveryJson::new(d, None))
                .collect(),
            page: paged.page,
            has_next: paged.has_next,
        });
    }
    if paged.items.is_empty() {
        outln!("no deliveries");
        return Ok(());
    }
    let mut table = Table::new(&[
        "id", "hook", "event", "event id", "attempt", "status", "duration", "time", "result",
    ]);
    for d in &paged.items {
        table.row(vec![
            d.id.to_string(),
            d.hook_id.to_string(),
            d.event.to_string(),
            d.event_id.to_string(),
            format!("{}{}", d.attempt, marks(d)),
            d.response_status
                .map_or_else(|| "-".to_owned(), |s| s.to_string()),
            output::duration(d.duration),
            output::time(d.created_at),
            d.result.to_string(),
        ]);
    }
    table.print();
    if paged.has_next {
        outln!("(more: --page {})", paged.page + 1);
    }
    Ok(())
}

/// ` (test)`, ` (redelivery)`, ` (test, redelivery)` or nothing: what kind of
/// delivery it was, after its attempt number.
fn marks(d: &Delivery) -> &'static str {
    match (d.test, d.redelivery) {
        (true, true) => " (test, redelivery)",
        (true, false) => " (test)",
        (false, true) => " (redelivery)",
        (false, false) => "",
    }
}

/// The attempt's result, and what went wrong if anything: `success`, or e.g.
/// `timeout (timed out: the overall timeout of 15s expired)`.
fn result(d: &Delivery) -> String {
    match &d.error {
        Some(error) => format!("{} ({error})", d.result),
        None => d.result.to_string(),
    }
}

fn show(global: &Global, id: i64) -> anyhow::Result<()> {
    let store = store::open(global)?;
    let Some(d) = store.delivery(id).or_fail()? else {
        return Err(store::error(djinn_hook_store::Error::DeliveryNotFound {
            id,
        }));
    };
    if global.json {
        return output::print_json(&DeliveryFullJson::new(&d, None));
    }
    let url = store.webhook(d.hook_id).or_fail()?.map_or_else(
        || "?".to_owned(),
        |h| redact_userinfo(&h.payload_url).into_owned(),
    );
    outln!(
        "delivery {}: {} to hook {}, attempt {}{}",
        d.id,
        d.event,
        d.hook_id,
        d.attempt,
        marks(&d)
    );
    outln!("event id:  {}", d.event_id);
    outln!("time:      {}", output::time(d.created_at));
    outln!("duration:  {}", output::duration(d.duration));
    outln!("result:    {}", result(&d));
    if d.tls_verification_skipped {
        outln!("tls:       certificate not verified (ssl off)");
    }
    outln!();
    outln!("> POST {url}");
    for (name, value) in &d.request_headers {
        outln!("> {name}: {value}");
    }
    outln!();
    outln!("{}", String::from_utf8_lossy(&d.request_body));
    if d.request_truncated {
        outln!("[request body truncated]");
    }
    outln!();
    match d.response_status {
        Some(status) => outln!("< {status}"),
        None => outln!("< no response"),
    }
    for (name, value) in &d.response_headers {
        outln!("< {name}: {value}");
    }
    if !d.response_body.is_empty() {
        outln!();
        outln!("{}", String::from_utf8_lossy(&d.response_body));
    }
    if d.response_truncated {
        outln!("[response body truncated]");
    }
    Ok(())
}

/// Runs `redeliver`: one delivery, or with `--hook` a bulk recovery.
pub(crate) fn redeliver(global: &Global, args: &RedeliverArgs) -> anyhow::Result<()> {
    let Some(id) = args.id else {
        return recover(global, args);
    };
    let store = store::open(global)?;
    let task = store.redeliver(id).or_fail()?;
    if global.json {
        let Some(d) = store.delivery(id).or_fail()? else {
            return Err(store::error(djinn_hook_store::Error::DeliveryNotFound {
                id,
            }));
        };
        output::print_json(&RedeliveryJson::new(&d, task))
    } else {
        outln!(
            "delivery {id} queued again (same event id, flagged as a redelivery); `{} worker --until-idle` sends it",
            output::program()
        );
        Ok(())
    }
}

/// `redeliver --hook ID --since … [--until …] [--failed]`: a bulk recovery, in batches, with a
/// progress bar on a terminal; prints how many deliveries it queued.
fn recover(global: &Global, args: &RedeliverArgs) -> anyhow::Result<()> {
    let hook = args.hook.expect("clap: --hook or an id");
    let now = time::OffsetDateTime::now_utc();
    let instant = |flag: &str, text: &str| match djinn_hook_server::parse_instant(text, now) {
        Ok(at) => Ok(at),
        Err(problem) => invalid!("{flag}: {problem}"),
    };
    let since = instant("--since", args.since.as_deref().expect("clap: --since"))?;
    let mut recovery = Recovery::new(hook, since);
    recovery.until = args
        .until
        .as_deref()
        .map(|until| instant("--until", until))
        .transpose()?;
    if recovery.until.is_some_and(|until| until <= since) {
        invalid!("--until: must be after --since");
    }
    recovery.failed_only = args.failed;
    let store = store::open(global)?;
    let total = store.recover_count(&recovery).or_fail()?;
    let bar = super::progress::bar(total, &format!("queueing webhook {hook}'s deliveries"));
    let queued = djinn_hook_server::recover_all(&store, &recovery, |n| bar.inc(n)).or_fail();
    bar.finish_and_clear();
    let queued = queued?;
    if global.json {
        output::print_json(&serde_json::json!({ "queued": queued }))
    } else {
        outln!(
            "{queued} {} of webhook {hook} queued again (each event once, same event id); `{} worker --until-idle` sends them",
            if queued == 1 {
                "delivery"
            } else {
                "deliveries"
            },
            output::program()
        );
        Ok(())
    }
}
