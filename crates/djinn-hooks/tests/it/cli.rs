//! The command line itself: invalid input exits 2 and stores nothing, `--help` and output
//! snapshots, the demo.

use djinn_hook_server::Receiver;
use djinn_hook_sign::Secret;
use serde_json::Value;

use crate::{Env, Run};

const NS: &str = "wallace.breen/blackmesa";

/// Insta settings for this module: [`crate::redacted`] plus table durations, temporary
/// folders and example bodies.
fn redacted() -> insta::Settings {
    crate::redacted(&[
        // Durations in tables keep a fixed width so columns stay put.
        (r"\b\d+(\.\d+)?(µs|ms|s) {2,}", "[dur]    "),
        (r"\b\d+(\.\d+)?(µs|ms|s)\b", "[dur]"),
        (r"duration_ms=\d+\.\d+", "duration_ms=[ms]"),
        (r"\S*/\.tmp[A-Za-z0-9]+", "[tmpdir]"),
        // Bodies follow the payload crate's examples.
        (r#""request_body": ".*""#, r#""request_body": "[body]""#),
        (r#"(?m)^\{"id":.*\}$"#, "[body]"),
    ])
}

/// Asserts exit code 2, a message on stderr containing `needle`, nothing on stdout.
#[track_caller]
fn assert_invalid(run: &Run, needle: &str) {
    assert_eq!(run.code, 2, "expected exit code 2: {run:#?}");
    assert!(
        run.stderr.contains(needle),
        "stderr lacks {needle:?}: {}",
        run.stderr
    );
    assert!(
        run.stderr.lines().count() <= 2,
        "one or two lines: {}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

fn hooks(env: &Env) -> Vec<Value> {
    serde_json::from_str(env.run(&["--json", "hook", "list"], None).ok()).unwrap()
}

#[test]
fn bad_urls_and_ssl_on_http_exit_2_and_store_no_hook() {
    let env = Env::new();
    for (url, extra, needle) in [
        ("ftp://example.com/hook", None, "payload_url"),
        ("not a url", None, "payload_url"),
        ("http:///nohost", None, "payload_url"),
        ("http://example.com/hook", Some("--ssl"), "ssl"),
    ] {
        let mut args = vec!["hook", "create", "--namespace", NS, "--url", url];
        args.extend(extra);
        assert_invalid(&env.run(&args, None), needle);
    }
    let run = env.run(
        &[
            "hook",
            "create",
            "--namespace",
            "no-slash",
            "--url",
            "https://example.com/",
        ],
        None,
    );
    assert_invalid(&run, "no-slash");
    assert_eq!(hooks(&env), Vec::<Value>::new(), "nothing was stored");

    // --no-ssl on https is fine, and https defaults to ssl on.
    env.create_hook(NS, "https://a.example.com/", &[]);
    env.create_hook(NS, "https://b.example.com/", &["--no-ssl"]);
    let ssl: Vec<bool> = hooks(&env)
        .iter()
        .map(|h| h["ssl"].as_bool().unwrap())
        .collect();
    assert_eq!(ssl, [true, false]);
}

#[test]
fn bad_payloads_and_unknown_events_exit_2_and_store_no_event() {
    let env = Env::new();
    let receiver = Receiver::start("127.0.0.1:0", Secret::new("s")).unwrap();
    env.create_hook(NS, &receiver.url(), &["--secret", "s"]);
    let finished = env
        .run(&["example", "build.finished"], None)
        .ok()
        .to_owned();
    let bad_status = finished.replacen("\"status\": \"passed\"", "\"status\": \"done\"", 1);
    assert_ne!(
        bad_status, finished,
        "the example has a passed status to break"
    );

    let run = env.run(
        &["emit", "build.finished", "--namespace", NS],
        Some(bad_status.as_bytes()),
    );
    assert_invalid(&run, "build.finished: status: unknown variant");
    let run = env.run(
        &["emit", "build.finished", "--namespace", NS],
        Some(b"{\"id\": "),
    );
    assert_invalid(&run, "invalid payload: build.finished");
    let run = env.run(
        &["emit", "build.exploded", "--namespace", NS],
        Some(finished.as_bytes()),
    );
    assert_invalid(
        &run,
        "unknown event \"build.exploded\", expected one of build.submitted",
    );
    let run = env.run(&["example", "build.exploded"], None);
    assert_invalid(&run, "unknown event \"build.exploded\"");
    let run = env.run(
        &[
            "emit",
            "cron",
            "--namespace",
            NS,
            "--payload",
            "missing.json",
        ],
        None,
    );
    assert_invalid(&run, "missing.json");

    // Nothing was stored: the worker finds nothing to deliver.
    assert_eq!(env.worker_stats(&[])["attempts"], 0);
    assert!(receiver.drain().is_empty());
    let list = env.run(&["--json", "deliveries", "list"], None);
    let list: Value = serde_json::from_str(list.ok()).unwrap();
    assert_eq!(list["items"], Value::Array(vec![]));
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    assert_eq!(env.run(&["hook", "frobnicate"], None).code, 2);
    assert_eq!(env.run(&["emit"], None).code, 2);
    assert_invalid(
        &env.run(&["prune", "--older-than", "soon"], None),
        "--older-than",
    );
    assert_invalid(
        &env.run(&["deliveries", "list", "--event", "nope"], None),
        "--event",
    );
    let run = env.run(
        &["worker", "--until-idle", "--breaker-open-for", "0s"],
        None,
    );
    assert_invalid(&run, "--breaker-open-for: must be more than 0s");
    let run = env.run(
        &[
            "serve",
            "--breaker-open-for",
            "1m",
            "--breaker-max-open-for",
            "30s",
        ],
        None,
    );
    assert_invalid(
        &run,
        "--breaker-max-open-for: must be at least --breaker-open-for (1m), got 30s",
    );
    // `serve` itself is tested in serve.rs; without tokens it refuses a non-loopback address.
    let run = env.run(&["serve", "--listen", "0.0.0.0:0"], None);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--listen 0.0.0.0:0"), "{run:?}");
}

#[test]
fn missing_things_and_a_damaged_key_file_exit_1() {
    let env = Env::new();
    let run = env.run(&["hook", "show", "42"], None);
    assert_eq!(
        (run.code, run.stderr.trim()),
        (1, "djinn-hooks: webhook 42 not found")
    );
    let run = env.run(&["deliveries", "show", "7"], None);
    assert_eq!(
        (run.code, run.stderr.trim()),
        (1, "djinn-hooks: delivery 7 not found")
    );

    use std::os::unix::fs::PermissionsExt;
    let private = |name: &str, mode: u32| {
        std::fs::set_permissions(env.path(name), std::fs::Permissions::from_mode(mode)).unwrap();
    };
    std::fs::write(env.path("short.key"), b"0123").unwrap();
    private("short.key", 0o600);
    let run = env.run(&["--key-file", "short.key", "hook", "list"], None);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("short.key holds 4 bytes, expected 32"),
        "{}",
        run.stderr
    );

    // A key file others may read is refused, with the fix, as ssh does.
    std::fs::write(env.path("open.key"), [7u8; 32]).unwrap();
    private("open.key", 0o644);
    let run = env.run(&["--key-file", "open.key", "hook", "list"], None);
    assert_eq!(
        (run.code, run.stderr.trim()),
        (
            1,
            "djinn-hooks: key file open.key is readable by others (mode 0644); \
             make it private with `chmod 600 open.key`"
        )
    );
}

/// The one intake rule, as the API's (`POST /n/{ns}/-/events` answers 404): an event for a
/// namespace nobody created exits 1 naming it and stores nothing, not even the namespace.
#[test]
fn emit_to_an_unknown_namespace_exits_1_and_stores_nothing() {
    let env = Env::new();
    let example = env.run(&["example", "cron"], None).ok().to_owned();
    let run = env.run(
        &["emit", "cron", "--namespace", "ghost/ns"],
        Some(example.as_bytes()),
    );
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr.trim(),
        "djinn-hooks: namespace \"ghost/ns\" not found; nothing stored (a namespace comes into \
         being with its first webhook: hook create --namespace ghost/ns ...)"
    );
    let key = djinn_hook_store::SecretKey::load_or_create(
        &djinn_hook_store::SecretKey::file_beside(&env.db()),
    )
    .unwrap();
    let store = djinn_hook_store::Store::open(env.db(), key).unwrap();
    assert_eq!(store.namespace("ghost/ns").unwrap(), None);
    assert_eq!(store.counts().unwrap().events, 0);
    drop(store);

    // Once its first webhook made the namespace, the same event is stored and matched.
    let receiver = Receiver::start("127.0.0.1:0", Secret::new("s")).unwrap();
    env.create_hook("ghost/ns", &receiver.url(), &["--secret", "s"]);
    let run = env.run(
        &["--json", "emit", "cron", "--namespace", "ghost/ns"],
        Some(example.as_bytes()),
    );
    let accepted: Value = serde_json::from_str(run.ok()).unwrap();
    assert_eq!(accepted["matched"], 1, "{accepted}");
}

#[test]
fn the_key_file_is_created_0600_beside_the_database_and_secrets_stay_hidden() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.create_hook(NS, "https://example.com/", &["--secret", "hunter2"]);
    let key = env.path("hooks.db.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&key).unwrap().len(), 32);
    for args in [
        &["hook", "list"][..],
        &["hook", "show", "1"],
        &["--json", "hook", "show", "1"],
    ] {
        let out = env.run(args, None);
        assert!(!out.ok().contains("hunter2"), "{args:?} shows the secret");
    }
    let db = std::fs::read(env.db()).unwrap();
    assert!(
        !db.windows(7).any(|w| w == b"hunter2"),
        "the secret is stored encrypted"
    );
}

#[test]
fn help_snapshots() {
    let env = Env::new();
    let commands: &[&[&str]] = &[
        &[],
        &["hook"],
        &["hook", "create"],
        &["hook", "list"],
        &["hook", "show"],
        &["hook", "update"],
        &["hook", "rotate-secret"],
        &["hook", "delete"],
        &["hook", "test"],
        &["emit"],
        &["worker"],
        &["deliveries"],
        &["deliveries", "list"],
        &["deliveries", "show"],
        &["redeliver"],
        &["prune"],
        &["sign"],
        &["verify"],
        &["example"],
        &["events"],
        &["demo"],
        &["serve"],
        &["listen"],
        &["config"],
        &["config", "check"],
        &["config", "example"],
        &["completions"],
        &["manpages"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let run = env.run(&args, None);
        let name = if command.is_empty() {
            "help".to_owned()
        } else {
            format!("help-{}", command.join("-"))
        };
        redacted().bind(|| insta::assert_snapshot!(name, run.ok()));
    }
}

#[test]
fn output_snapshots() {
    let env = Env::new();
    let receiver = Receiver::start("127.0.0.1:0", Secret::new("s3cret")).unwrap();
    let url = receiver.url();
    env.create_hook(NS, &url, &["--secret", "s3cret"]);
    env.create_hook(
        "wallace.breen/blackmesa/xen",
        "https://hooks.example.com/djinn",
        &[
            "--events",
            "build.finished,build.tagged",
            "--standard-webhooks",
            "--inactive",
        ],
    );
    let payload = env
        .run(&["example", "build.finished"], None)
        .ok()
        .to_owned();
    let emit = env.run(
        &["emit", "build.finished", "--namespace", NS],
        Some(payload.as_bytes()),
    );
    let worker = env.run(&["worker", "--until-idle", "--allow-private-network"], None);
    worker.ok();

    redacted().bind(|| {
        insta::assert_snapshot!("events", env.run(&["events"], None).ok());
        insta::assert_snapshot!("emit", emit.ok());
        insta::assert_snapshot!("worker-log", worker.stderr);
        insta::assert_snapshot!("hook-list", env.run(&["hook", "list"], None).ok());
        insta::assert_snapshot!(
            "hook-list-json",
            env.run(&["--json", "hook", "list"], None).ok()
        );
        insta::assert_snapshot!("hook-show", env.run(&["hook", "show", "2"], None).ok());
        insta::assert_snapshot!(
            "deliveries-list",
            env.run(&["deliveries", "list"], None).ok()
        );
        insta::assert_snapshot!(
            "deliveries-list-json",
            env.run(&["--json", "deliveries", "list"], None).ok()
        );
        insta::assert_snapshot!(
            "deliveries-show",
            env.run(&["deliveries", "show", "1"], None).ok()
        );
        insta::assert_snapshot!(
            "hook-update-json",
            env.run(
                &[
                    "--json",
                    "hook",
                    "update",
                    "2",
                    "--active",
                    "--remove-secret",
                    "--events",
                    ""
                ],
                None
            )
            .ok()
        );
    });
}

#[test]
fn demo_runs_end_to_end_and_can_run_again() {
    let env = Env::new();
    // Without --db the demo uses (and replaces) djinn-demo.db in the current folder.
    for _ in 0..2 {
        let mut command = env.command(&["demo"]);
        command.env_remove("DJINN_HOOKS_DB");
        let run = Run::from(command.output().unwrap());
        let out = run.ok();
        assert!(
            out.contains("15 of 15 events delivered and verified"),
            "{out}"
        );
        assert_eq!(out.matches("  yes\n").count(), 15, "{out}");
    }
    assert!(env.path("djinn-demo.db").exists());
    let list = env.run(
        &["--db", "djinn-demo.db", "--json", "deliveries", "list"],
        None,
    );
    let list: Value = serde_json::from_str(list.ok()).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 15);

    // With --db it needs a fresh file, and leaves it behind. The follow-up commands name the
    // executable as it can be run: here, not on the PATH nor under the current folder, by its
    // absolute path.
    let mut command = env.command(&["demo"]);
    command.env_remove("PATH");
    let run = Run::from(command.output().unwrap());
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_djinn-hooks"))
        .canonicalize()
        .unwrap();
    assert!(
        run.ok().contains(&format!(
            "\n  {} --db {}",
            exe.display(),
            env.db().display()
        )),
        "{}",
        run.stdout
    );
    let mut settings = redacted();
    settings.add_filter(r"(?m)^  \S+/djinn-hooks --db", "  [exe] --db");
    settings.bind(|| insta::assert_snapshot!("demo", run.ok()));
    let run = env.run(&["demo"], None);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("needs a fresh database"),
        "{}",
        run.stderr
    );

    // `cargo run` from the clone: the path under the current folder. On the PATH: the name.
    let (bin_dir, target) = (
        exe.parent().unwrap(),
        exe.parent().unwrap().parent().unwrap(),
    );
    let relative = exe.strip_prefix(target).unwrap().display().to_string();
    let follow_up = |cwd: &std::path::Path, path: Option<&std::path::Path>, db: &str| {
        let mut command = env.command(&["--db", env.path(db).to_str().unwrap(), "demo"]);
        command.current_dir(cwd);
        match path {
            Some(path) => command.env("PATH", path),
            None => command.env_remove("PATH"),
        };
        let run = Run::from(command.output().unwrap());
        run.ok().lines().next_back().unwrap_or_default().to_owned()
    };
    assert_eq!(
        follow_up(target, None, "relative.db"),
        format!(
            "  {relative} --db {} hook list",
            env.path("relative.db").display()
        )
    );
    assert_eq!(
        follow_up(env.path("").as_path(), Some(bin_dir), "on-path.db"),
        format!(
            "  djinn-hooks --db {} hook list",
            env.path("on-path.db").display()
        )
    );

    // --json: one object, a delivery per event.
    let run = env.run(&["--db", "json-demo.db", "--json", "demo"], None);
    let out: Value = serde_json::from_str(run.ok()).unwrap();
    assert_eq!(out["ok"], true);
    let deliveries = out["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 15);
    assert!(
        deliveries
            .iter()
            .all(|d| d["status"] == 204 && d["signature_ok"] == true)
    );
}

#[test]
fn example_prints_the_same_bytes_as_the_fixtures() {
    let env = Env::new();
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/webhooks");
    for event in djinn_hook_payload::EventType::ALL {
        let fixture = std::fs::read(fixtures.join(format!("{}.json", event.name())))
            .unwrap_or_else(|err| panic!("{event}: {err} (run `cargo xtask fixtures`)"));
        let run = env.run(&["example", event.name()], None);
        assert_eq!(run.ok().as_bytes(), fixture, "{event}");
    }
    // Another API server changes the URLs, nothing else.
    let run = env.run(
        &["example", "cron", "--api-server", "https://ci.example.com/"],
        None,
    );
    assert!(
        run.ok().contains("\"url\": \"https://ci.example.com/cron/"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_webhooks_delivery_limits_are_set_shown_and_reset() {
    let env = Env::new();
    let id = env.create_hook(
        "o/ns",
        "https://example.com/hook",
        &["--max-in-flight", "3", "--timeout", "2500ms"],
    );
    let show = |env: &Env| -> Value {
        serde_json::from_str(env.run(&["--json", "hook", "show", &id], None).ok()).unwrap()
    };
    let hook = show(&env);
    assert_eq!(hook["max_in_flight"], 3);
    assert_eq!(hook["timeout_ms"], 2500);
    assert_eq!(hook["breaker"], Value::Null);
    let text = env.run(&["hook", "show", &id], None);
    assert!(text.ok().contains("max_in_flight      3"), "{text:?}");

    env.run(
        &[
            "hook",
            "update",
            &id,
            "--max-in-flight",
            "default",
            "--timeout",
            "20s",
        ],
        None,
    )
    .ok();
    let hook = show(&env);
    assert_eq!(hook["max_in_flight"], Value::Null);
    assert_eq!(hook["timeout_ms"], 20_000);

    // Bad values name the flag and change nothing.
    let run = env.run(&["hook", "update", &id, "--timeout", "soon"], None);
    assert_invalid(
        &run,
        "--timeout: \"soon\" is not a duration like 10s or 500ms",
    );
    let run = env.run(&["hook", "update", &id, "--max-in-flight", "0"], None);
    assert_invalid(&run, "max_in_flight must be between 1 and 1000, got 0");
    let run = env.run(
        &["hook", "update", &id, "--timeout", "1000s", "--inactive"],
        None,
    );
    assert_invalid(
        &run,
        "timeout must be between 100 ms and 120 s, got 1000000 ms",
    );
    let hook = show(&env);
    assert_eq!(hook["timeout_ms"], 20_000);
    assert_eq!(hook["active"], true, "an invalid update changes nothing");
}

#[test]
fn credentials_in_a_payload_url_are_never_printed() {
    let env = Env::new();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://user:password@127.0.0.1:{closed}/hook");
    let id = env.create_hook(NS, &url, &[]);
    let example = env.run(&["example", "build.finished"], None);
    env.run(
        &["emit", "build.finished", "--namespace", NS],
        Some(example.ok().as_bytes()),
    )
    .ok();
    let mut runs = vec![
        env.run(&["hook", "list"], None),
        env.run(&["hook", "show", &id], None),
        env.run(&["hook", "test", &id, "--allow-private-network"], None),
        env.run(&["worker", "--until-idle", "--allow-private-network"], None),
    ];
    runs.push(env.run(&["deliveries", "list"], None));
    runs.push(env.run(&["deliveries", "show", "1"], None));
    runs.push(env.run(&["deliveries", "show", "2"], None));
    for run in &runs {
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(!all.contains("password"), "{run:#?}");
    }
    let show = runs[1].ok();
    assert!(
        show.contains(&format!("http://***@127.0.0.1:{closed}/hook")),
        "{show}"
    );
    assert!(
        runs[5].ok().contains("> POST http://***@127.0.0.1:"),
        "{:#?}",
        runs[5]
    );
}

#[test]
fn prune_with_an_age_beyond_any_date_exits_2() {
    let env = Env::new();
    for age in ["999999999999d", "36501d", "18446744073709551615s"] {
        let run = env.run(&["prune", "--older-than", age], None);
        assert_invalid(&run, &format!("--older-than: {age:?} is too long"));
    }
    let run = env.run(&["prune", "--older-than", "36500d"], None);
    assert_eq!(
        run.ok(),
        "pruned 0 deliveries and 0 events older than 36500d\n"
    );
}

#[test]
fn a_payload_urls_user_info_is_never_printed_and_survives_an_update_as_shown() {
    let env = Env::new();
    let url = "https://ci:hunter2@example.com/hook";
    let shown = "https://***@example.com/hook";
    let id = env.create_hook(NS, url, &[]);
    for args in [
        &["--json", "hook", "show", &id][..],
        &["--json", "hook", "list"],
        &["hook", "show", &id],
        &["hook", "list"],
    ] {
        let out = env.run(args, None);
        assert!(!out.ok().contains("hunter2"), "{args:?}: {}", out.stdout);
        assert!(out.ok().contains(shown), "{args:?}: {}", out.stdout);
    }
    let stored = || {
        let key = djinn_hook_store::SecretKey::load_or_create(
            &djinn_hook_store::SecretKey::file_beside(&env.db()),
        )
        .unwrap();
        let store = djinn_hook_store::Store::open(env.db(), key).unwrap();
        store
            .webhook(id.parse().unwrap())
            .unwrap()
            .unwrap()
            .payload_url
    };
    assert_eq!(stored(), url, "kept for sending");
    let out = env.run(
        &[
            "--json",
            "hook",
            "update",
            &id,
            "--url",
            shown,
            "--inactive",
        ],
        None,
    );
    assert!(!out.ok().contains("hunter2"), "{}", out.stdout);
    assert_eq!(stored(), url, "the URL as printed keeps the credentials");
    let moved = env.run(
        &[
            "hook",
            "update",
            &id,
            "--url",
            "https://***@attacker.example/hook",
        ],
        None,
    );
    assert_eq!(moved.code, 2, "{}", moved.stderr);
    assert!(
        moved.stderr.contains("--url: has *** for its credentials"),
        "{}",
        moved.stderr
    );
    assert_eq!(stored(), url);
}

/// A `whsec_` secret that is not padded base64 of 24 to 64 bytes exits 2 naming `secret` at
/// `hook create`, `hook update` and `hook rotate-secret` (the store's rule, as the API's and
/// the UI's), and changes nothing.
#[test]
fn an_invalid_standard_webhooks_secret_exits_2_naming_secret() {
    let env = Env::new();
    let id = env.create_hook(NS, "https://example.com/kept", &["--standard-webhooks"]);
    for bad in ["whsec_!!!notbase64", "whsec_", "whsec_c2VjcmV0=="] {
        for args in [
            vec![
                "hook",
                "create",
                "--namespace",
                NS,
                "--url",
                "https://example.com/new",
                "--standard-webhooks",
                "--secret",
                bad,
            ],
            vec!["hook", "update", &id, "--secret", bad],
            vec!["hook", "rotate-secret", &id, "--secret", bad],
        ] {
            let run = env.run(&args, None);
            assert_invalid(
                &run,
                "secret starts with whsec_ but is not a Standard Webhooks secret",
            );
            if bad.len() > "whsec_".len() {
                assert!(!run.stderr.contains(bad), "never echoed: {}", run.stderr);
            }
        }
    }
    let listed = hooks(&env);
    assert_eq!(listed.len(), 1, "nothing created: {listed:?}");
    assert_eq!(
        listed[0]["has_secret"], false,
        "nothing changed: {listed:?}"
    );
}
