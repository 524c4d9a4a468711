//! The command line, declared with clap: every flag the binary accepts lives here.
#![allow(
    rustdoc::invalid_html_tags,
    reason = "the doc comments are clap's --help texts, where `<db>` and the like are placeholders"
)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Djinn CI webhooks for small installs: manage webhooks, emit events, deliver
/// them signed, and look at what was sent.
#[derive(Debug, Parser)]
#[command(
    name = "djinn-hooks",
    version,
    after_help = "Exit codes: 0 success; 1 the operation failed (including a signature that does not \
                  match); 2 bad usage or invalid input (the message names the field or value)."
)]
pub(crate) struct Cli {
    /// The SQLite database file, or a PostgreSQL URL (postgres://user@host:port/db, which
    /// needs --key-file) [default: djinn-hooks.db; for `demo`: djinn-demo.db].
    #[arg(long, global = true, env = "DJINN_HOOKS_DB", hide_env_values = true)]
    pub(crate) db: Option<PathBuf>,

    /// The file holding the 32-byte key that encrypts webhook secrets
    /// [default: beside the database, <db>.key; created with mode 0600 on first use; required
    /// with PostgreSQL, and the same file for every process sharing the database]
    #[arg(
        long,
        global = true,
        env = "DJINN_HOOKS_KEY_FILE",
        hide_env_values = true
    )]
    pub(crate) key_file: Option<PathBuf>,

    /// Print machine-readable JSON instead of tables and text.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// The config file: settings of serve and worker, and db and key-file, in TOML; a flag or
    /// an environment variable overrides it (see `config example`) [default: djinn-hooks.toml
    /// in the current folder, if it exists]
    #[arg(
        long,
        global = true,
        env = "DJINN_HOOKS_CONFIG",
        hide_env_values = true
    )]
    pub(crate) config: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The `--json` form of a webhook, shown by `hook --help`.
const HOOK_JSON_HELP: &str = "\
With --json, a webhook is printed as `serve` answers it, with the original Djinn CI webhook
entity's fields:
  id, author_id, user_id (always null: users live in the CI server), namespace_id,
  payload_url (its user-info, as in https://user:pw@host/, shown as ***), ssl, events
  (names), active, url,
  namespace {id, parent_id, name (last segment), path (below the owner), owner, url,
  webhooks_url},
  last_response {code, duration (ns), error, created_at, delivery_id} or null;
and these of djinn-hooks: has_secret (the secret itself is never shown),
standard_webhooks, disabled_reason, disabled_at, created_at, secret_rotating_until (when
a rotation's overlap ends, or null); `hook rotate-secret --json` adds generated_secret
when it generated the secret (shown only then).
API URLs (url, namespace.url, namespace.webhooks_url) are null on the command line.
`hook test --json` prints the delivery in full, as `deliveries show --json`.";

/// The `--json` form of a delivery, shown by `deliveries --help`.
const DELIVERY_JSON_HELP: &str = "\
With --json, a delivery is printed as `serve` answers it:
  id, hook_id, event_id, event, attempt, redelivery, test, code (the response status or
  null), duration (ns), error, failed, created_at, url (null on the command line);
`deliveries show` adds tls_verification_skipped, request and response, each
  {headers ([name, value] pairs), body, body_encoding (utf-8 or base64), truncated}.
`deliveries list` prints {items, page, has_next}.";

/// After `emit --help`: the one rule for unknown namespaces, the same as the API's.
const EMIT_HELP: &str = "\
The namespace must exist: it comes into being with its first webhook (`hook create`). An event
for an unknown namespace is refused (exit code 1) and nothing is stored, as
`POST /n/{ns}/-/events` answers 404.

A batch (--batch) is checked whole first: an invalid item is reported by its index and field
(exit code 2) and nothing is stored. Each item may carry its own idempotency_key.";

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create, list, show, update, rotate the secret of, delete and test webhooks.
    #[command(subcommand, after_long_help = HOOK_JSON_HELP)]
    Hook(HookCommand),
    /// Validate and store an event; one delivery is queued per matching webhook.
    #[command(after_help = EMIT_HELP)]
    Emit(EmitArgs),
    /// Deliver due events, retrying failures on the schedule.
    Worker(WorkerArgs),
    /// Look at recorded delivery attempts.
    #[command(subcommand, after_long_help = DELIVERY_JSON_HELP)]
    Deliveries(DeliveriesCommand),
    /// Queue a recorded delivery again (same event id, flagged as a redelivery), or, with
    /// --hook and --since, every (failed) delivery of a webhook in a time range.
    #[command(after_long_help = REDELIVER_HELP)]
    Redeliver(RedeliverArgs),
    /// Delete delivery attempts and finished events older than a given age.
    Prune(PruneArgs),
    /// Print the X-Djinn-CI-Signature value for a body (a file, or stdin).
    Sign(SignArgs),
    /// Check an X-Djinn-CI-Signature value against a body: exit 0 on a match, 1 on a
    /// mismatch, 2 when the value is malformed.
    Verify(VerifyArgs),
    /// Print the example payload of an event (the same bytes as docs/examples).
    Example(ExampleArgs),
    /// List the event names, a line each.
    Events,
    /// Run the whole path on loopback: receiver, webhook, 15 events, signed deliveries.
    Demo(DemoArgs),
    /// Serve the REST API and run the delivery worker in the same process.
    Serve(ServeArgs),
    /// Run a receiver that prints each delivery and checks its signature.
    Listen(ListenArgs),
    /// Check the config file and show the settings in effect, or print an example file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the shell completion script for bash, zsh or fish.
    #[command(after_help = COMPLETIONS_HELP)]
    Completions {
        /// The shell.
        shell: CompletionShell,
    },
    /// Write the man pages (djinn-hooks.1 and one page per command) into a folder.
    Manpages {
        /// The folder; created if missing. Existing pages of the same names are replaced.
        dir: PathBuf,
    },
}

/// After `redeliver --help`: what a bulk recovery queues.
const REDELIVER_HELP: &str = "\
With --hook, a bulk recovery: the events of the webhook's deliveries recorded from --since to
--until (default: now) are queued again, each event once however many of its deliveries are
in the range, with its event id and its last recorded body; with --failed, only events whose
last delivery to the webhook failed. Run twice, it queues nothing the second time: an event
with a delivery still waiting, or whose deliveries a recovery already queued, is skipped (a
redelivery that fails is a new failed delivery, which a later recovery may send again). It
prints how many it queued (--json: {\"queued\": N}), with a progress bar on a terminal. The
tasks are the webhook's own: a worker sends them under its per-webhook cap, taking turns with
the other webhooks. Times: RFC 3339 (2026-12-06T08:00:00Z), a UTC date and time
(2026-12-06T08:00), or an age (24h, 2d).";

/// `redeliver`
#[derive(Debug, Args)]
pub(crate) struct RedeliverArgs {
    /// The delivery id (from `deliveries list`).
    #[arg(required_unless_present = "hook", conflicts_with = "hook")]
    pub(crate) id: Option<i64>,
    /// Recover a webhook: queue again its deliveries from --since to --until.
    #[arg(long, value_name = "ID", requires = "since")]
    pub(crate) hook: Option<i64>,
    /// Only events whose last delivery to the webhook failed (without it: every delivery).
    #[arg(long, requires = "hook")]
    pub(crate) failed: bool,
    /// The start of the range: a time (2026-12-06T08:00:00Z) or an age (24h, 2d).
    #[arg(long, value_name = "TIME", requires = "hook")]
    pub(crate) since: Option<String>,
    /// The end of the range [default: now].
    #[arg(long, value_name = "TIME", requires = "hook")]
    pub(crate) until: Option<String>,
}

/// `config …`
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Check the config file, then print the settings serve and worker would run with, each
    /// with where it came from (flag > environment > file > default); exit 2 naming the file,
    /// line and key of the first bad setting.
    Check,
    /// Print a config file naming every setting with its help and default, all commented out.
    Example,
}

/// After `completions --help`: where each shell looks for its script.
const COMPLETIONS_HELP: &str = "\
Install the script where your shell looks for completions, for example:
  bash: djinn-hooks completions bash > ~/.local/share/bash-completion/completions/djinn-hooks
  zsh:  djinn-hooks completions zsh > ~/.zfunc/_djinn-hooks  (with ~/.zfunc in $fpath)
  fish: djinn-hooks completions fish > ~/.config/fish/completions/djinn-hooks.fish
The Debian package installs all three.";

/// The shells `completions` writes a script for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CompletionShell {
    /// GNU Bash.
    Bash,
    /// The Z shell.
    Zsh,
    /// The friendly interactive shell.
    Fish,
}

/// `hook …`
#[derive(Debug, Subcommand)]
pub(crate) enum HookCommand {
    /// Create a webhook and print its id.
    Create(HookCreateArgs),
    /// List webhooks with their last response.
    List {
        /// Only the webhooks of this namespace (OWNER/PATH).
        #[arg(long)]
        namespace: Option<String>,
    },
    /// Show one webhook.
    Show {
        /// The webhook id.
        id: i64,
    },
    /// Change any of a webhook's fields.
    Update(HookUpdateArgs),
    /// Give a webhook a new secret, still signing with the old one too for an overlap
    RotateSecret(HookRotateArgs),
    /// Delete a webhook, its pending deliveries and its delivery log.
    Delete {
        /// The webhook id.
        id: i64,
    },
    /// Deliver an event's example payload to one webhook now, even inactive; record and print it
    Test {
        /// The webhook id.
        id: i64,
        /// The event whose example payload is sent.
        #[arg(long, default_value = "build.submitted")]
        event: String,
        #[command(flatten)]
        network: NetworkArgs,
    },
}

/// Where a secret comes from.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub(crate) struct SecretArgs {
    /// The secret that signs deliveries (prefer --secret-file: arguments are visible to other
    /// users). A whsec_… secret is a Standard Webhooks one: padded base64 of 24 to 64 bytes.
    #[arg(long)]
    pub(crate) secret: Option<String>,
    /// A file whose contents (trailing newline removed) are the secret.
    #[arg(long)]
    pub(crate) secret_file: Option<PathBuf>,
}

/// `hook create`
#[derive(Debug, Args)]
pub(crate) struct HookCreateArgs {
    /// The namespace, as OWNER/PATH (created if it does not exist).
    #[arg(long)]
    pub(crate) namespace: String,
    /// The payload URL deliveries are POSTed to.
    #[arg(long)]
    pub(crate) url: String,
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
    /// Comma-separated event names; none means all events.
    #[arg(long, value_delimiter = ',')]
    pub(crate) events: Vec<String>,
    /// Verify the receiver's TLS certificate (needs an https URL) [default: on for https URLs].
    #[arg(long, overrides_with = "no_ssl")]
    pub(crate) ssl: bool,
    /// Do not verify the receiver's TLS certificate (https URLs only matter).
    #[arg(long, overrides_with = "ssl")]
    pub(crate) no_ssl: bool,
    /// Create the webhook switched off.
    #[arg(long)]
    pub(crate) inactive: bool,
    /// Also sign with the Standard Webhooks headers (webhook-id, -timestamp, -signature).
    #[arg(long)]
    pub(crate) standard_webhooks: bool,
    /// Most deliveries to this webhook at once [default: the worker's --max-in-flight-per-hook].
    #[arg(long, value_name = "N")]
    pub(crate) max_in_flight: Option<u32>,
    /// The overall timeout of one attempt, e.g. 10s or 500ms [default: the worker's, 15s].
    #[arg(long, value_name = "DURATION")]
    pub(crate) timeout: Option<String>,
    /// A header every delivery carries, e.g. 'X-Api-Key: value' (repeat for more). Stored
    /// encrypted and shown as ***; names the delivery sets itself are refused.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
}

impl HookCreateArgs {
    /// `--ssl` / `--no-ssl` (the last one given wins); `None` when neither was given.
    pub(crate) fn ssl(&self) -> Option<bool> {
        if self.ssl {
            Some(true)
        } else if self.no_ssl {
            Some(false)
        } else {
            None
        }
    }
}

/// `hook update`
#[derive(Debug, Args)]
pub(crate) struct HookUpdateArgs {
    /// The webhook id.
    pub(crate) id: i64,
    /// A new payload URL.
    #[arg(long)]
    pub(crate) url: Option<String>,
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
    /// Remove the secret: deliveries are no longer signed.
    #[arg(long, conflicts_with_all = ["secret", "secret_file"])]
    pub(crate) remove_secret: bool,
    /// Comma-separated event names; an empty value means all events.
    #[arg(long, value_delimiter = ',')]
    pub(crate) events: Option<Vec<String>>,
    /// Verify the receiver's TLS certificate.
    #[arg(long, conflicts_with = "no_ssl")]
    pub(crate) ssl: bool,
    /// Do not verify the receiver's TLS certificate.
    #[arg(long)]
    pub(crate) no_ssl: bool,
    /// Switch the webhook on (also re-enables one the sender disabled).
    #[arg(long, conflicts_with = "inactive")]
    pub(crate) active: bool,
    /// Switch the webhook off.
    #[arg(long)]
    pub(crate) inactive: bool,
    /// Also sign with the Standard Webhooks headers.
    #[arg(long, conflicts_with = "no_standard_webhooks")]
    pub(crate) standard_webhooks: bool,
    /// Stop sending the Standard Webhooks headers.
    #[arg(long)]
    pub(crate) no_standard_webhooks: bool,
    /// Most deliveries to this webhook at once; `default` leaves it to the worker.
    #[arg(long, value_name = "N|default")]
    pub(crate) max_in_flight: Option<String>,
    /// The overall timeout of one attempt, e.g. 10s or 500ms; `default` leaves it to the worker.
    #[arg(long, value_name = "DURATION|default")]
    pub(crate) timeout: Option<String>,
    /// Add a custom header, or replace the value of the one of that name, e.g.
    /// 'X-Api-Key: value' (repeat for more); the others are kept.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
    /// Remove the custom header of this name (repeat for more).
    #[arg(long = "remove-header", value_name = "NAME")]
    pub(crate) remove_headers: Vec<String>,
}

/// `hook rotate-secret`
#[derive(Debug, Args)]
#[command(after_help = "\
Without --secret or --secret-file a random secret is generated and printed this once. \
During the overlap each delivery's webhook-signature header carries two signatures, \
`v1,<new> v1,<old>`, so a receiver holding either secret accepts it; X-Djinn-CI-Signature \
carries the new secret's only. Receivers: see docs/SECRET-ROTATION.md.")]
pub(crate) struct HookRotateArgs {
    /// The webhook id.
    pub(crate) id: i64,
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
    /// How long deliveries are still signed with the old secret too (at most a week; zero: the old
    /// one stops at once).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub(crate) overlap: std::time::Duration,
}

/// Whether delivery may reach private networks.
#[derive(Debug, Args)]
pub(crate) struct NetworkArgs {
    /// Allow delivery to loopback and private networks (local installs, tests).
    /// Cloud metadata addresses stay blocked.
    #[arg(long)]
    pub(crate) allow_private_network: bool,
}

/// Circuit breakers, for `serve` and `worker`.
#[derive(Debug, Args)]
pub(crate) struct BreakerArgs {
    /// Connect failures or timeouts in a row at one receiver (scheme, host, port) that open
    /// its circuit breaker: every process on the database then puts its deliveries off, without
    /// using up their retries, until one probe gets an answer. 0 never opens it.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub(crate) breaker_failures: u32,
    /// How long a breaker stays open before its probe (e.g. 30s, 2m); each failed probe
    /// doubles it, up to --breaker-max-open-for.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub(crate) breaker_open_for: std::time::Duration,
    /// The longest a breaker stays open between two probes.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub(crate) breaker_max_open_for: std::time::Duration,
}

/// What `serve` and `worker` tell the operator: traces, and notifications about themselves.
#[derive(Debug, Args)]
pub(crate) struct OpsArgs {
    /// Export traces over OTLP/HTTP (protobuf) to this collector, e.g. http://127.0.0.1:4318
    /// (spans go to <URL>/v1/traces): the intake, its commit, the store's calls and each
    /// delivery attempt, one trace per event, continued by the receiver through the
    /// `traceparent` header. Off when unset.
    #[arg(long, value_name = "URL", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub(crate) otlp_endpoint: Option<String>,
    /// Send notifications about djinn-hooks itself to this URL, signed as any delivery: a
    /// webhook disabled or enabled again, a delivery failed for good, a breaker open too long.
    /// Kept in the store as the one webhook of the namespace _djinn-hooks/notifications.
    #[arg(long, value_name = "URL")]
    pub(crate) notify_url: Option<String>,
    /// A file whose contents (trailing newline removed) are the secret that signs the
    /// notifications.
    #[arg(long, value_name = "PATH", requires = "notify_url")]
    pub(crate) notify_secret_file: Option<PathBuf>,
    /// Send the notifications' Standard Webhooks headers too.
    #[arg(long, requires = "notify_url")]
    pub(crate) notify_standard_webhooks: bool,
    /// Notify when a receiver's breaker is still open this long after it first opened.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub(crate) notify_breaker_after: std::time::Duration,
}

/// Pruning by itself, for `serve` and a long-running `worker`.
#[derive(Debug, Args)]
pub(crate) struct AutoPruneArgs {
    /// Prune delivery attempts and finished events older than this, by itself (e.g. 30d, 12h).
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    pub(crate) prune_older_than: std::time::Duration,
    /// How often to prune by itself (each prune works in small batches).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub(crate) prune_every: std::time::Duration,
    /// Never prune by itself (run the `prune` command from cron instead).
    #[arg(long)]
    pub(crate) no_auto_prune: bool,
}

impl AutoPruneArgs {
    /// The schedule asked for, or `None` with --no-auto-prune.
    pub(crate) fn schedule(&self) -> Option<djinn_hook_store::AutoPrune> {
        (!self.no_auto_prune).then_some(djinn_hook_store::AutoPrune {
            older_than: self.prune_older_than,
            every: self.prune_every,
        })
    }
}

/// `emit`
#[derive(Debug, Args)]
pub(crate) struct EmitArgs {
    /// The event name, e.g. build.finished (see `djinn-hooks events`); none with --batch.
    #[arg(required_unless_present = "batch", conflicts_with = "batch")]
    pub(crate) event: Option<String>,
    /// The namespace, as OWNER/PATH; it must exist (see below).
    #[arg(long)]
    pub(crate) namespace: String,
    /// The JSON payload file; stdin when absent.
    #[arg(long, conflicts_with = "batch")]
    pub(crate) payload: Option<PathBuf>,
    /// A key naming this event, for retries: the same key with the same event type and
    /// payload in the namespace, within --idempotency-window, prints the first event's id
    /// and stores nothing; with another type or payload it is refused (exit code 1).
    #[arg(long, value_name = "KEY", conflicts_with = "batch")]
    pub(crate) idempotency_key: Option<String>,
    /// How long an idempotency key answers for its event (e.g. 24h, 7d); `serve` has its own.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub(crate) idempotency_window: std::time::Duration,
    /// A batch of events to store all or none, in one transaction: a JSON array of
    /// {"event": NAME, "payload": {...}, "idempotency_key": KEY (optional)}, as `POST
    /// /n/{ns}/-/events/batch` takes (a file, or - for stdin).
    #[arg(long, value_name = "FILE")]
    pub(crate) batch: Option<PathBuf>,
}

/// `worker`
#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// Threads that claim, sign, send and commit. A delivery waiting on a slow receiver (over
    /// 100 ms) hands its place to a new thread, so slow receivers never take these.
    #[arg(long, default_value_t = 8)]
    pub(crate) concurrency: usize,
    /// Most deliveries waiting on receivers not known to answer quickly at once (each a socket
    /// and a few KiB, no thread); beyond it, those receivers wait their turn.
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub(crate) max_deliveries: usize,
    /// Return once nothing is due (for scripts and tests) instead of running until SIGINT/SIGTERM.
    #[arg(long)]
    pub(crate) until_idle: bool,
    /// How long a claimed task stays reserved for this worker (e.g. 90s, 5m) while it runs. If
    /// it dies, its tasks come back at once: when it restarts, or when another worker or
    /// server on the database next claims (see `--shutdown-timeout` for a stop). The lease
    /// is the outer bound, for a worker alive but cut off from the database, or stuck.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub(crate) lease: std::time::Duration,
    /// On SIGINT/SIGTERM the worker claims no more and hands its queued tasks back at once;
    /// the deliveries under way get this long to finish (e.g. 8s, 0s), then what is left is
    /// handed back (due again at once, for the next process) and the worker exits.
    #[arg(long, default_value = "8s", value_parser = humantime::parse_duration)]
    pub(crate) shutdown_timeout: std::time::Duration,
    /// Most deliveries to one webhook at once, for webhooks without their own
    /// (`hook update --max-in-flight`) [default: half of --concurrency, rounded up].
    #[arg(long, value_name = "N")]
    pub(crate) max_in_flight_per_hook: Option<usize>,
    #[command(flatten)]
    pub(crate) breakers: BreakerArgs,
    #[command(flatten)]
    pub(crate) network: NetworkArgs,
    #[command(flatten)]
    pub(crate) auto_prune: AutoPruneArgs,
    #[command(flatten)]
    pub(crate) ops: OpsArgs,
}

/// `deliveries …`
#[derive(Debug, Subcommand)]
pub(crate) enum DeliveriesCommand {
    /// List delivery attempts, newest first, 25 a page.
    List {
        /// Only this webhook's deliveries.
        #[arg(long)]
        hook: Option<i64>,
        /// Only this event's deliveries (its UUID).
        #[arg(long)]
        event: Option<String>,
        /// Only failed attempts (an error or a non-2xx status).
        #[arg(long)]
        failed: bool,
        /// Only test deliveries (sent by `hook test`).
        #[arg(long, overrides_with = "no_test")]
        test: bool,
        /// Leave test deliveries out.
        #[arg(long, overrides_with = "test")]
        no_test: bool,
        /// The page, from 1.
        #[arg(long, default_value_t = 1)]
        page: u32,
    },
    /// Show one attempt in full: request and response, headers and bodies.
    Show {
        /// The delivery id.
        id: i64,
    },
}

/// `prune`
#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// The age past which attempts and finished events go, e.g. 30d, 12h.
    #[arg(long, default_value = "30d")]
    pub(crate) older_than: String,
}

/// `sign`
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The webhook's secret (--secret or --secret-file).
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
    /// The body file; stdin when absent.
    pub(crate) file: Option<PathBuf>,
}

/// `verify`
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The webhook's secret (--secret or --secret-file).
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
    /// The X-Djinn-CI-Signature header value, sha256=<hex>.
    #[arg(long)]
    pub(crate) signature: String,
    /// The body file; stdin when absent.
    pub(crate) file: Option<PathBuf>,
}

/// `example`
#[derive(Debug, Args)]
pub(crate) struct ExampleArgs {
    /// The event name.
    pub(crate) event: String,
    /// The API server base URL the example's URLs are built from.
    #[arg(long, default_value = djinn_hook_payload::DEFAULT_API_SERVER)]
    pub(crate) api_server: String,
}

/// `demo`
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// After the demo, serve the API and the web UI on this address over the demo's database
    /// (receiver included) until Ctrl-C, to look at the deliveries in a browser (ADDR: default
    /// 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
    pub(crate) keep_serving: Option<String>,
}

/// `serve`
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The address the API listens on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: String,
    /// Delivery threads that claim, sign, send and commit. A delivery waiting on a slow
    /// receiver (over 100 ms) hands its place to a new thread, so slow receivers never take
    /// these.
    #[arg(long, default_value_t = 8)]
    pub(crate) concurrency: usize,
    /// Most deliveries waiting on receivers not known to answer quickly at once (each a socket
    /// and a few KiB, no thread); beyond it, those receivers wait their turn.
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub(crate) max_deliveries: usize,
    /// How long a claimed task stays reserved for this server's worker (e.g. 90s, 5m) while it
    /// runs. If the server dies, its tasks come back at once: when it restarts, or when
    /// another server or worker on the database next claims. The lease is the outer bound,
    /// for a server alive but cut off from the database, or stuck.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub(crate) lease: std::time::Duration,
    /// On SIGINT/SIGTERM the server stops accepting, answers the requests in progress, and its
    /// worker claims no more and hands its queued tasks back at once; the deliveries under way
    /// get this long to finish (e.g. 8s, 0s), then what is left is handed back (due again at
    /// once, for the next process) and the server exits.
    #[arg(long, default_value = "8s", value_parser = humantime::parse_duration)]
    pub(crate) shutdown_timeout: std::time::Duration,
    /// A file of bearer tokens, one a line, each of at least 16 characters (also
    /// DJINN_HOOKS_TOKENS, comma-separated).
    #[arg(long)]
    pub(crate) token_file: Option<PathBuf>,
    /// The largest request body accepted, in bytes; in a batch, the largest payload of one
    /// event.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub(crate) max_body: usize,
    /// The largest body of a batch of events (POST …/events/batch), in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    pub(crate) max_batch_body: usize,
    /// The most events in one batch (POST …/events/batch).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub(crate) max_batch_events: usize,
    /// How long an event's idempotency key (the Idempotency-Key header, a batch item's
    /// idempotency_key) answers for it (e.g. 24h, 7d); a prune deletes it after.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub(crate) idempotency_window: std::time::Duration,
    /// How many threads run the HTTP side (connections are tasks on them: a slow or idle client
    /// holds none).
    #[arg(long, default_value_t = 2)]
    pub(crate) http_threads: usize,
    /// The API's public base URL, for the `url` fields of responses [default: http://<bound
    /// address>].
    #[arg(long)]
    pub(crate) base_url: Option<String>,
    /// Store posted events that are themselves webhook deliveries, and allow webhooks aimed at
    /// this server's own intake (relaying on purpose; otherwise refused as a webhook loop).
    #[arg(long)]
    pub(crate) accept_relayed_deliveries: bool,
    #[command(flatten)]
    pub(crate) breakers: BreakerArgs,
    #[command(flatten)]
    pub(crate) network: NetworkArgs,
    #[command(flatten)]
    pub(crate) auto_prune: AutoPruneArgs,
    #[command(flatten)]
    pub(crate) ops: OpsArgs,
}

/// `listen`
#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    /// The address the receiver listens on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub(crate) listen: String,
    /// The webhook's secret, used to check each delivery's signature (--secret or --secret-file).
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
}
