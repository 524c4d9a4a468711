//! The command line, declared with clap: every flag the binary accepts lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Djinn CI webhooks for small installs: manage webhooks, emit events, deliver
/// them signed, and look at what was sent.
#[derive(Debug, Parser)]
#[command(name = "djinn-hooks", version, about, long_about = None)]
pub struct Cli {
    /// The SQLite database file.
    #[arg(long, global = true, env = "DJINN_HOOKS_DB", default_value = "djinn-hooks.db")]
    pub db: PathBuf,

    /// The file holding the 32-byte key that encrypts webhook secrets
    /// [default: beside the database, <db>.key; created with mode 0600 on first use]
    #[arg(long, global = true, env = "DJINN_HOOKS_KEY_FILE")]
    pub key_file: Option<PathBuf>,

    /// Print machine-readable JSON instead of tables and text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, show, update, delete and test webhooks.
    #[command(subcommand)]
    Hook(HookCommand),
    /// Validate and store an event; one delivery is queued per matching webhook.
    Emit(EmitArgs),
    /// Deliver due events, retrying failures on the schedule.
    Worker(WorkerArgs),
    /// Look at recorded delivery attempts.
    #[command(subcommand)]
    Deliveries(DeliveriesCommand),
    /// Queue a recorded delivery again (same event id, flagged as a redelivery).
    Redeliver {
        /// The delivery id (from `deliveries list`).
        id: i64,
    },
    /// Delete delivery attempts and finished events older than a given age.
    Prune(PruneArgs),
    /// Print the X-Djinn-CI-Signature value for a body (a file, or stdin).
    Sign(SignArgs),
    /// Check an X-Djinn-CI-Signature value against a body: exit 0 on a match, 1 otherwise.
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
}

/// `hook …`
#[derive(Debug, Subcommand)]
pub enum HookCommand {
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
    /// Delete a webhook, its pending deliveries and its delivery log.
    Delete {
        /// The webhook id.
        id: i64,
    },
    /// Deliver an event's example payload to one webhook now and print the attempt.
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
pub struct SecretArgs {
    /// The secret that signs deliveries (prefer --secret-file: arguments are visible to other users).
    #[arg(long)]
    pub secret: Option<String>,
    /// A file whose contents (trailing newline removed) are the secret.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
}

/// `hook create`
#[derive(Debug, Args)]
pub struct HookCreateArgs {
    /// The namespace, as OWNER/PATH (created if it does not exist).
    #[arg(long)]
    pub namespace: String,
    /// The payload URL deliveries are POSTed to.
    #[arg(long)]
    pub url: String,
    #[command(flatten)]
    pub secret: SecretArgs,
    /// Comma-separated event names; none means all events.
    #[arg(long, value_delimiter = ',')]
    pub events: Vec<String>,
    /// Verify the receiver's TLS certificate (needs an https URL) [default: on for https URLs].
    #[arg(long, overrides_with = "no_ssl")]
    pub ssl: bool,
    /// Do not verify the receiver's TLS certificate.
    #[arg(long)]
    pub no_ssl: bool,
    /// Create the webhook switched off.
    #[arg(long)]
    pub inactive: bool,
    /// Also sign with the Standard Webhooks headers (webhook-id, -timestamp, -signature).
    #[arg(long)]
    pub standard_webhooks: bool,
}

/// `hook update`
#[derive(Debug, Args)]
pub struct HookUpdateArgs {
    /// The webhook id.
    pub id: i64,
    /// A new payload URL.
    #[arg(long)]
    pub url: Option<String>,
    #[command(flatten)]
    pub secret: SecretArgs,
    /// Remove the secret: deliveries are no longer signed.
    #[arg(long, conflicts_with_all = ["secret", "secret_file"])]
    pub remove_secret: bool,
    /// Comma-separated event names; an empty value means all events.
    #[arg(long, value_delimiter = ',')]
    pub events: Option<Vec<String>>,
    /// Verify the receiver's TLS certificate.
    #[arg(long, conflicts_with = "no_ssl")]
    pub ssl: bool,
    /// Do not verify the receiver's TLS certificate.
    #[arg(long)]
    pub no_ssl: bool,
    /// Switch the webhook on (also re-enables one the sender disabled).
    #[arg(long, conflicts_with = "inactive")]
    pub active: bool,
    /// Switch the webhook off.
    #[arg(long)]
    pub inactive: bool,
    /// Also sign with the Standard Webhooks headers.
    #[arg(long, conflicts_with = "no_standard_webhooks")]
    pub standard_webhooks: bool,
    /// Stop sending the Standard Webhooks headers.
    #[arg(long)]
    pub no_standard_webhooks: bool,
}

/// Whether delivery may reach private networks.
#[derive(Debug, Args)]
pub struct NetworkArgs {
    /// Allow delivery to loopback and private networks (local installs, tests).
    /// Cloud metadata addresses stay blocked.
    #[arg(long)]
    pub allow_private_network: bool,
}

/// `emit`
#[derive(Debug, Args)]
pub struct EmitArgs {
    /// The event name, e.g. build.finished (see `djinn-hooks events`).
    pub event: String,
    /// The namespace, as OWNER/PATH (created if it does not exist).
    #[arg(long)]
    pub namespace: String,
    /// The JSON payload file; stdin when absent.
    #[arg(long)]
    pub payload: Option<PathBuf>,
}

/// `worker`
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// How many deliveries run at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Return once nothing is due (for scripts and tests) instead of running until SIGINT/SIGTERM.
    #[arg(long)]
    pub until_idle: bool,
    #[command(flatten)]
    pub network: NetworkArgs,
}

/// `deliveries …`
#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
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
pub struct PruneArgs {
    /// The age past which attempts and finished events go, e.g. 30d, 12h.
    #[arg(long, default_value = "30d")]
    pub older_than: String,
}

/// `sign`
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The webhook's secret.
    #[arg(long)]
    pub secret: String,
    /// The body file; stdin when absent.
    pub file: Option<PathBuf>,
}

/// `verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The webhook's secret.
    #[arg(long)]
    pub secret: String,
    /// The X-Djinn-CI-Signature header value, sha256=<hex>.
    #[arg(long)]
    pub signature: String,
    /// The body file; stdin when absent.
    pub file: Option<PathBuf>,
}

/// `example`
#[derive(Debug, Args)]
pub struct ExampleArgs {
    /// The event name.
    pub event: String,
    /// The API server base URL the example's URLs are built from.
    #[arg(long, default_value = "https://api.djinn-ci.com")]
    pub api_server: String,
}

/// `demo`
#[derive(Debug, Args)]
pub struct DemoArgs {}

/// `serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address the API listens on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// How many deliveries run at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// A file of bearer tokens, one a line (also DJINN_HOOKS_TOKENS, comma-separated).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// The largest request body accepted, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body: usize,
    #[command(flatten)]
    pub network: NetworkArgs,
}

/// `listen`
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// The address the receiver listens on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub listen: String,
    /// The webhook's secret, used to check each delivery's signature.
    #[arg(long)]
    pub secret: String,
}
