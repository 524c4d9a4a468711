//! End-to-end tests: the built djinn-hooks binary run against real receivers on 127.0.0.1.

/// Each listed test (`fn(&Env)`) on the test's SQLite file, and on a throw-away PostgreSQL
/// database when `DJINN_TEST_POSTGRES_URL` names a server (else it says it did not run).
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $test() {
                super::$test(&crate::Env::new());
            })*
        }
        mod postgres {
            $(#[test]
            fn $test() {
                if let Some(server) = crate::fixtures::postgres_server() {
                    super::$test(&crate::Env::on_postgres(&server));
                }
            })*
        }
    };
}

mod cli;
mod config;
mod crash;
mod deliver;
mod fixtures;
mod full_disk;
mod hook_test;
mod intake;
mod listen;
mod liveness;
mod manual;
mod many_processes;
mod ops;
mod python_receiver;
mod recovery;
mod serve;
mod serve_flood;
mod serve_process;
mod shared_breakers;
mod sign;
mod worker_prune;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use djinn_hook_sign::headers;

/// A temporary folder holding the database and key file of one test.
pub(crate) struct Env {
    dir: tempfile::TempDir,
    /// A throw-away PostgreSQL database the binary uses instead of the folder's SQLite file.
    postgres: Option<fixtures::Scratch>,
}

/// What one run of the binary gave.
#[derive(Debug)]
pub(crate) struct Run {
    /// The exit code.
    pub(crate) code: i32,
    /// Standard output, as text.
    pub(crate) stdout: String,
    /// Standard error, as text.
    pub(crate) stderr: String,
}

impl Run {
    /// Asserts exit code 0 and returns stdout.
    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success, got {self:#?}");
        &self.stdout
    }
}

impl Env {
    pub(crate) fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
            postgres: None,
        }
    }

    /// An environment whose commands use a throw-away database on the PostgreSQL `server`
    /// (and a key file in the test's folder, as every process on one database shares one).
    pub(crate) fn on_postgres(server: &str) -> Env {
        Env {
            postgres: Some(fixtures::Scratch::create(server)),
            ..Env::new()
        }
    }

    /// What the binary's `--db` names: the folder's SQLite file, or the PostgreSQL URL.
    pub(crate) fn database(&self) -> String {
        match &self.postgres {
            Some(scratch) => scratch.url.clone(),
            None => self.db().display().to_string(),
        }
    }

    /// The database file.
    pub(crate) fn db(&self) -> PathBuf {
        self.dir.path().join("hooks.db")
    }

    /// A path in the test's folder.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The binary, with this test's database and nothing from the caller's environment.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_djinn-hooks"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("DJINN_HOOKS_DB", self.database())
            .env_remove("DJINN_HOOKS_KEY_FILE")
            .env_remove("DJINN_HOOKS_TOKENS")
            .env_remove("DJINN_HOOKS_CONFIG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env("NO_COLOR", "1");
        if self.postgres.is_some() {
            command.env("DJINN_HOOKS_KEY_FILE", self.path("hooks.key"));
        }
        command
    }

    /// `hook create --namespace NS --url URL [extra...]`, which must succeed; returns the id
    /// printed.
    #[track_caller]
    pub(crate) fn create_hook(&self, ns: &str, url: &str, extra: &[&str]) -> String {
        let mut args = vec!["hook", "create", "--namespace", ns, "--url", url];
        args.extend_from_slice(extra);
        let id = self.run(&args, None).ok().trim().to_owned();
        assert!(
            id.parse::<i64>().is_ok(),
            "hook create prints the id: {id:?}"
        );
        id
    }

    /// `--json worker --until-idle --allow-private-network [extra...]`, which must succeed;
    /// returns its counters (`attempts`, `delivered`, ...).
    #[track_caller]
    pub(crate) fn worker_stats(&self, extra: &[&str]) -> serde_json::Value {
        let mut args = vec![
            "--json",
            "worker",
            "--until-idle",
            "--allow-private-network",
        ];
        args.extend_from_slice(extra);
        serde_json::from_str(self.run(&args, None).ok()).expect("worker --json prints counters")
    }

    /// A store on this test's database, as the binary opens it.
    pub(crate) fn store(&self) -> djinn_hook_store::Store {
        let key_file = self.postgres.as_ref().map(|_| self.path("hooks.key"));
        djinn_hook_store::Store::open_with_key_file(
            std::path::Path::new(&self.database()),
            key_file.as_deref(),
        )
        .expect("open the test's store")
    }

    /// Runs the binary with `args` and `stdin` (empty when `None`) and waits for it.
    pub(crate) fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        run_command(self.command(args), stdin)
    }
}

/// Runs `command` with `stdin` (empty when `None`) and waits for it.
pub(crate) fn run_command(mut command: Command, stdin: Option<&[u8]>) -> Run {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn djinn-hooks");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(bytes) = stdin {
        // A command that rejects its arguments exits without reading stdin.
        match input.write_all(bytes) {
            Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                panic!("write stdin: {err}")
            }
            _ => {}
        }
    }
    drop(input);
    let output = child.wait_with_output().expect("wait for djinn-hooks");
    Run::from(output)
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Posts an `event` with `body` through `agent` to the intake of namespace `ns` on the server
/// at `base` (`http://addr`); its status and answer.
pub(crate) fn post_event(
    agent: &ureq::Agent,
    base: &str,
    ns: &str,
    event: djinn_hook_payload::EventType,
    body: &[u8],
) -> (u16, String) {
    let mut response = agent
        .post(format!("{base}/n/{ns}/-/events"))
        .header("Content-Type", "application/json")
        .header(headers::EVENT, event.name())
        .send(body)
        .expect("the intake answers");
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (response.status().as_u16(), text)
}

/// An HTTP agent for tests: statuses are values, not errors; no proxy; short timeouts.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into()
}

/// Insta settings redacting what changes from run to run (event ids, times, durations, ports,
/// signatures, HTTP dates), then the `extra` filters of one test module.
pub(crate) fn redacted(extra: &[(&str, &str)]) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    let common: &[(&str, &str)] = &[
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[uuid]",
        ),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[time]"),
        (r#""duration": \d+"#, r#""duration": "[ns]""#),
        (r"127\.0\.0\.1:\d{2,5}", "127.0.0.1:[port]"),
        (r"sha256=[0-9a-f]{64}", "sha256=[hmac]"),
        (
            r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT",
            "[date]",
        ),
    ];
    for (regex, replacement) in common.iter().chain(extra) {
        settings.add_filter(regex, *replacement);
    }
    settings
}
