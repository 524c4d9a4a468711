//! `docs/receivers/receiver.py`, the Python receiver docs/RECEIVING.md shows, against real
//! deliveries of the binary: it accepts a delivery signed with its secret (both signatures, the
//! Standard Webhooks one from a `whsec_` secret), answers a redelivery without doing the work
//! again, and refuses a delivery signed with another secret.
//!
//! Needs `python3`; without it the test says it did not run, and
//! `DJINN_TEST_PYTHON_REQUIRED=1` (set by `.ci/run`) turns that into a failure.

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::Env;

const NS: &str = "python/receiver";
/// The Standard Webhooks spec's example secret: the receiver decodes it for the
/// `webhook-signature` key and uses it whole for `X-Djinn-CI-Signature`, as the sender does.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The script, found in this repository only.
fn script() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/receivers/receiver.py");
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// Whether `python3` runs; when it does not, says so (a failure when required).
fn python3_or_skip() -> bool {
    match Command::new("python3").arg("--version").output() {
        Ok(output) if output.status.success() => true,
        other => {
            let why = match other {
                Ok(output) => format!("python3 --version exited with {}", output.status),
                Err(error) => format!("python3 not found ({error})"),
            };
            assert!(
                std::env::var_os("DJINN_TEST_PYTHON_REQUIRED").is_none(),
                "python_receiver: required (DJINN_TEST_PYTHON_REQUIRED) but {why}"
            );
            // To stderr itself, past the harness's capture of `eprintln!`: the person running
            // `cargo test` sees what did not run.
            let _ = writeln!(
                std::io::stderr(),
                "NOT RUN: python_receiver: {why} (CI requires it)"
            );
            false
        }
    }
}

/// The running script: its base URL and its stdout lines; killed when dropped.
struct Receiver {
    child: Child,
    url: String,
    lines: mpsc::Receiver<String>,
}

impl Receiver {
    fn start(secret_file: &Path) -> Receiver {
        let mut child = Command::new("python3")
            .arg(script())
            .arg("127.0.0.1:0")
            .arg(secret_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python3");
        let (send, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut receiver = Receiver {
            child,
            url: String::new(),
            lines,
        };
        let first = receiver.next_line();
        receiver.url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        receiver
    }

    /// The next line printed, within 10 s.
    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("receiver.py printed nothing within 10 s")
    }

    /// Reads lines until one starts with `expected`; panics, listing what came, if none does.
    #[track_caller]
    fn expect_line(&self, expected: &str) {
        let mut seen = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            if line.starts_with(expected) {
                return;
            }
            seen.push(line);
        }
        panic!("receiver.py never printed {expected:?}; it printed {seen:#?}");
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn python_receiver_verifies_real_deliveries() {
    if !python3_or_skip() {
        return;
    }
    let env = Env::new();
    let secret_file = env.path("secret.txt");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let receiver = Receiver::start(&secret_file);

    // Signed with the receiver's secret, both schemes.
    let secret_path = secret_file.to_str().unwrap();
    let good = env.create_hook(
        NS,
        &format!("{}/good", receiver.url),
        &[
            "--secret-file",
            secret_path,
            "--standard-webhooks",
            "--events",
            "build.finished",
        ],
    );
    let example = env.run(&["example", "build.finished"], None);
    let emitted = env.run(
        &["--json", "emit", "build.finished", "--namespace", NS],
        Some(example.ok().as_bytes()),
    );
    let emitted: Value = serde_json::from_str(emitted.ok()).unwrap();
    assert_eq!(emitted["matched"], 1, "{emitted}");
    let event_id = emitted["event_id"].as_str().unwrap().to_owned();
    let stats = env.worker_stats(&[]);
    assert_eq!(stats["delivered"], 1, "{stats}");
    receiver.expect_line(&format!(
        "build.finished {event_id} signature ok (standard webhooks ok) new -> 204"
    ));
    receiver.expect_line(&format!("processed build.finished {event_id} ("));

    // A redelivery carries the same delivery id: answered, not processed again.
    let list = env.run(&["--json", "deliveries", "list", "--hook", &good], None);
    let list: Value = serde_json::from_str(list.ok()).unwrap();
    let delivery = list["items"][0]["id"].to_string();
    assert_eq!(list["items"][0]["code"], 204, "{list}");
    env.run(&["redeliver", &delivery], None).ok();
    let stats = env.worker_stats(&[]);
    assert_eq!(stats["delivered"], 1, "{stats}");
    receiver.expect_line(&format!(
        "build.finished {event_id} signature ok (standard webhooks ok) duplicate -> 204"
    ));

    // Signed with another secret: refused with 401, which the sender records as a failure.
    let bad = env.create_hook(
        NS,
        &format!("{}/bad", receiver.url),
        &["--secret", "not the receiver's secret"],
    );
    let test = env.run(
        &[
            "--json",
            "hook",
            "test",
            &bad,
            "--event",
            "build.started",
            "--allow-private-network",
        ],
        None,
    );
    assert_eq!(test.code, 1, "a refused test delivery exits 1: {test:?}");
    let test: Value = serde_json::from_str(&test.stdout).unwrap();
    assert_eq!(test["code"], 401, "{test}");
    let test_event = test["event_id"].as_str().unwrap();
    receiver.expect_line(&format!(
        "build.started {test_event} BAD SIGNATURE (standard webhooks absent) -> 401"
    ));
}

/// Every Python block docs/RECEIVING.md quotes is a verbatim part of the script, so the page
/// shows the code the test above runs.
#[test]
fn receiving_md_quotes_the_script_as_it_is() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/RECEIVING.md");
    let page = std::fs::read_to_string(&docs).unwrap();
    let script = std::fs::read_to_string(script()).unwrap();
    let mut quoted = 0;
    for block in page.split("```python\n").skip(1) {
        let code = block.split("```").next().unwrap();
        assert!(
            script.contains(code),
            "docs/RECEIVING.md quotes code that docs/receivers/receiver.py does not have:\n{code}"
        );
        quoted += 1;
    }
    assert!(quoted > 0, "docs/RECEIVING.md quotes no Python");
}
