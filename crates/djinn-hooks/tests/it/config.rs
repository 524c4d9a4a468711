//! The config file: precedence (flag > environment > file > default), every refusal naming the
//! file, line and key, `config check`, and the example file in docs/ that cannot drift.

use std::path::Path;

use crate::{Env, Run, run_command};

const NS: &str = "wallace.breen/blackmesa";
const URL: &str = "http://127.0.0.1:9/hook";

/// `args` run in the test's folder with no database from the environment, so the file or the
/// default decides; `env` adds environment variables.
fn run_in(env: &Env, args: &[&str], vars: &[(&str, &Path)]) -> Run {
    let mut command = env.command(args);
    command.env_remove("DJINN_HOOKS_DB");
    for (name, value) in vars {
        command.env(name, value);
    }
    run_command(command, None)
}

/// The number of webhooks in the SQLite file `db` (0 when the file does not exist).
fn hooks_in(env: &Env, db: &Path) -> usize {
    if !db.exists() {
        return 0;
    }
    let run = run_in(
        env,
        &["--json", "--db", db.to_str().unwrap(), "hook", "list"],
        &[],
    );
    serde_json::from_str::<Vec<serde_json::Value>>(run.ok())
        .unwrap()
        .len()
}

#[test]
fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
    let env = Env::new();
    std::fs::write(env.path("djinn-hooks.toml"), "db = \"from-file.db\"\n").unwrap();
    let create = ["hook", "create", "--namespace", NS, "--url", URL];

    // The default file in the current folder, over the default database.
    run_in(&env, &create, &[]).ok();
    assert_eq!(hooks_in(&env, &env.path("from-file.db")), 1);
    assert!(
        !env.path("djinn-hooks.db").exists(),
        "the default database was used"
    );

    // The environment over the file.
    let from_env = env.path("from-env.db");
    run_in(&env, &create, &[("DJINN_HOOKS_DB", &from_env)]).ok();
    assert_eq!(hooks_in(&env, &from_env), 1);

    // A flag over both.
    let from_flag = env.path("from-flag.db");
    let mut args = vec!["--db", from_flag.to_str().unwrap()];
    args.extend(create);
    run_in(&env, &args, &[("DJINN_HOOKS_DB", &from_env)]).ok();
    assert_eq!(hooks_in(&env, &from_flag), 1);
    assert_eq!(hooks_in(&env, &from_env), 1);
    assert_eq!(hooks_in(&env, &env.path("from-file.db")), 1);
}

#[test]
fn a_section_sets_its_command_s_flags_and_check_shows_each_source() {
    let env = Env::new();
    let config = env.path("other.toml");
    std::fs::write(
        &config,
        "# a comment\ndb = \"file.db\"\n\n[worker]\nconcurrency = 3\nuntil-idle = true\n\
         allow-private-network = true\n\n[serve]\nmax-body = 2048\n",
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    // `until-idle = true` from the file: the worker stops once nothing is due, as with the flag.
    let worker = run_in(&env, &["--config", config_arg, "--json", "worker"], &[]);
    let stats: serde_json::Value = serde_json::from_str(worker.ok()).unwrap();
    assert_eq!(stats["attempts"], 0, "{stats}");

    let check = run_in(
        &env,
        &["--config", config_arg, "config", "check", "--db", "flag.db"],
        &[],
    );
    let out = check.ok();
    for line in [
        "db = \"flag.db\"  # flag",
        "concurrency = 3  # file",
        "until-idle = true  # file",
        "max-body = 2048  # file",
        "max-deliveries = 512  # default",
        "# token-file is not set",
    ] {
        assert!(out.contains(line), "{line:?} not in:\n{out}");
    }
    // serve's concurrency is not worker's: the section is the command's alone.
    let serve_part = out.split("[worker]").next().unwrap();
    assert!(serve_part.contains("concurrency = 8  # default"), "{out}");

    let from_env = run_in(
        &env,
        &["config", "check"],
        &[
            ("DJINN_HOOKS_CONFIG", &config),
            ("DJINN_HOOKS_DB", Path::new("env.db")),
        ],
    );
    assert!(
        from_env.ok().contains("db = \"env.db\"  # environment"),
        "{from_env:?}"
    );
}

#[test]
fn every_bad_file_is_refused_naming_the_file_line_and_key_and_stores_nothing() {
    let env = Env::new();
    let cases: &[(&str, &[&str])] = &[
        (
            "[worker]\nconcurency = 3\n",
            &[
                "bad.toml:2:1",
                "[worker] concurency",
                "unknown key",
                "concurrency",
            ],
        ),
        (
            "[listen]\nport = 1\n",
            &["bad.toml:1:2", "unknown section [listen]"],
        ),
        (
            "nope = 1\n",
            &["bad.toml:1:1", "nope", "unknown key", "key-file"],
        ),
        ("json = true\n", &["bad.toml:1:1", "json", "unknown key"]),
        (
            "\n[serve]\nmax-body = \"big\"\n",
            &["bad.toml:3:1", "[serve] max-body", "big"],
        ),
        (
            "[worker]\nlease = \"soon\"\n",
            &["bad.toml:2:1", "[worker] lease", "soon"],
        ),
        (
            "[worker]\nuntil-idle = \"yes\"\n",
            &["bad.toml:2:1", "until-idle", "true or false"],
        ),
        (
            "[worker]\nconcurrency = [1, 2]\n",
            &["bad.toml:2:1", "concurrency"],
        ),
        (
            "[worker]\nconcurrency = 2026-01-01\n",
            &["bad.toml:2:1", "a string or a number"],
        ),
        ("db = = 1\n", &["bad.toml:1:", "not TOML"]),
    ];
    for (text, needles) in cases {
        std::fs::write(env.path("bad.toml"), text).unwrap();
        let args = [
            "--config",
            "bad.toml",
            "hook",
            "create",
            "--namespace",
            NS,
            "--url",
            URL,
        ];
        let run = run_in(&env, &args, &[]);
        assert_eq!(run.code, 2, "{text:?}: {run:?}");
        for needle in *needles {
            assert!(
                run.stderr.contains(needle),
                "{text:?}: {needle:?} not in {}",
                run.stderr
            );
        }
        assert_eq!(run.stdout, "", "{text:?}");
        assert!(
            !env.path("djinn-hooks.db").exists(),
            "{text:?} stored a webhook"
        );
    }
    let missing = run_in(&env, &["--config", "absent.toml", "events"], &[]);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(missing.stderr.contains("absent.toml"), "{missing:?}");
}

#[test]
fn the_example_file_in_docs_is_the_generated_one_and_valid_uncommented() {
    let env = Env::new();
    let generated = run_in(&env, &["config", "example"], &[]).ok().to_owned();
    let in_docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/djinn-hooks.example.toml"),
    )
    .unwrap_or_default();
    assert!(
        generated == in_docs,
        "docs/djinn-hooks.example.toml is stale: run \
         `cargo run -p djinn-hooks -- config example > docs/djinn-hooks.example.toml`"
    );
    // Every setting uncommented, with its default: the file is still valid.
    let uncommented: String = generated
        .lines()
        .map(|line| format!("{}\n", setting_line(line).unwrap_or(line)))
        .collect();
    let settings = uncommented
        .lines()
        .filter(|line| line.contains(" = ") && !line.starts_with('#'))
        .count();
    assert!(settings >= 20, "{uncommented}");
    std::fs::write(env.path("all.toml"), &uncommented).unwrap();
    let check = run_in(&env, &["--config", "all.toml", "config", "check"], &[]);
    assert!(check.ok().contains("lease = \"5m\"  # file"), "{check:?}");
}

/// The `key = value` of an example line `# key = value` that gives a default (not a
/// placeholder such as `N` or `TOKEN_FILE`), if it is one.
fn setting_line(line: &str) -> Option<&str> {
    let setting = line.strip_prefix("# ")?;
    let (key, value) = setting.split_once(" = ")?;
    let is_key = !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '-');
    let placeholder = value.chars().all(|c| c.is_ascii_uppercase() || c == '_');
    (is_key && !placeholder).then_some(setting)
}

#[test]
fn the_debian_package_s_config_file_is_valid() {
    let env = Env::new();
    let packaged = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/djinn-hooks.toml");
    let check = run_in(
        &env,
        &["--config", packaged.to_str().unwrap(), "config", "check"],
        &[],
    );
    let out = check.ok();
    assert!(
        out.contains("db = \"/var/lib/djinn-hooks/djinn-hooks.db\"  # file"),
        "{out}"
    );
    assert!(out.contains("listen = \"127.0.0.1:8080\"  # file"), "{out}");
}
