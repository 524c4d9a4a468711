//! A full disk and an unwritable key folder, on real filesystems: the database lives on a small
//! tmpfs that fills up. While it is full, `emit` exits non-zero and accepts nothing it then
//! loses; the worker keeps its tasks; once space is freed everything accepted is delivered.
//!
//! Mounting needs root (CI runs as root). Elsewhere the tests say plainly that they did not run,
//! and `DJINN_TEST_FULL_DISK_REQUIRED=1` turns that into a failure.

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_payload::{EventType, example_payload};
use djinn_hook_server::Receiver;
use djinn_hook_sign::Secret;
use serde_json::Value;

use crate::Env;

const NS: &str = "full/disk";
const SECRET: &str = "full disk secret";

/// A tmpfs mounted on a temporary folder, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax: `1m`) with `options`, or says why it cannot.
    fn mount(size: &str, options: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}{options}"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Grows (or shrinks) the filesystem in place.
    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount to {size}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// The tmpfs, or `None` after saying why the test could not run (a failure when required).
fn tmpfs_or_skip(test: &str, size: &str, options: &str) -> Option<Tmpfs> {
    match Tmpfs::mount(size, options) {
        Ok(tmpfs) => Some(tmpfs),
        Err(why) => {
            assert!(
                std::env::var_os("DJINN_TEST_FULL_DISK_REQUIRED").is_none(),
                "{test}: required but could not run: {why}"
            );
            // To stderr itself, past the harness's capture of `eprintln!`: the person running
            // `cargo test` sees what did not run.
            let _ = writeln!(
                std::io::stderr(),
                "NOT RUN: {test}: {why} (needs root; CI runs it)"
            );
            None
        }
    }
}

/// A build.submitted payload padded to ~40 KiB (an unknown field, kept as sent).
fn padded_event() -> Vec<u8> {
    let example = example_payload(EventType::BuildSubmitted, "https://ci.example.com").to_body();
    let mut body: Value = serde_json::from_slice(&example).unwrap();
    body["padding"] = Value::String("x".repeat(40 * 1024));
    body.to_string().into_bytes()
}

/// A database on a 2 MiB tmpfs with one webhook, signed, for a receiver on 127.0.0.1.
struct Setup {
    disk: Tmpfs,
    env: Env,
    db: PathBuf,
    receiver: Receiver,
}

/// The [`Setup`] of `test`, or `None` after saying why it could not run.
fn setup(test: &str) -> Option<Setup> {
    let disk = tmpfs_or_skip(test, "2m", "")?;
    let env = Env::new();
    let db = disk.path("hooks.db");
    let receiver = Receiver::start("127.0.0.1:0", Secret::new(SECRET)).unwrap();
    let mut hook = env.command(&["hook", "create", "--namespace", NS, "--secret", SECRET]);
    hook.arg("--url")
        .arg(receiver.url())
        .env("DJINN_HOOKS_DB", &db);
    crate::run_command(hook, None).ok();
    Some(Setup {
        disk,
        env,
        db,
        receiver,
    })
}

/// `emit` with the database at `db`.
fn emit(env: &Env, db: &Path, body: &[u8]) -> crate::Run {
    let mut command = env.command(&["--json", "emit", "build.submitted", "--namespace", NS]);
    command.env("DJINN_HOOKS_DB", db);
    crate::run_command(command, Some(body))
}

fn worker_until_idle(env: &Env, db: &Path) -> crate::Run {
    let mut command = env.command(&[
        "worker",
        "--until-idle",
        "--allow-private-network",
        "--lease",
        "1s",
    ]);
    command.env("DJINN_HOOKS_DB", db);
    crate::run_command(command, None)
}

/// Starts a worker, waits for it to say that recording its attempts failed, and kills it.
fn worker_killed_while_it_cannot_record(env: &Env, db: &Path) {
    let mut command = env.command(&["worker", "--allow-private-network", "--lease", "1s"]);
    let mut child = command
        .env("DJINN_HOOKS_DB", db)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (lines, said) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut log = String::new();
    while !log.contains("disk is full") {
        let left = deadline.saturating_duration_since(Instant::now());
        match said.recv_timeout(left) {
            Ok(line) => log.push_str(&(line + "\n")),
            Err(_) => break,
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    assert!(
        log.contains("disk is full"),
        "the worker says why it stalls: {log}"
    );
}

#[test]
fn a_full_disk_refuses_events_loses_none_and_recovers() {
    let Some(Setup {
        disk,
        env,
        db,
        receiver,
    }) = setup("full disk")
    else {
        return;
    };

    // Events of ~40 KiB each until the disk refuses one: every `emit` either printed its
    // event id (accepted) or exited non-zero.
    let body = padded_event();
    let mut accepted = Vec::new();
    let refused = loop {
        let run = emit(&env, &db, &body);
        if run.code != 0 {
            break run;
        }
        let reply: Value = serde_json::from_str(&run.stdout).unwrap();
        accepted.push(reply["event_id"].as_str().unwrap().to_owned());
        assert!(accepted.len() < 200, "a 2 MiB disk never filled up");
    };
    assert!(!accepted.is_empty(), "nothing fit: {refused:?}");
    eprintln!(
        "full disk: {} events accepted, then: {}",
        accepted.len(),
        refused.stderr.trim()
    );
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("full"),
        "the error says the disk is full: {}",
        refused.stderr
    );
    // Still full: refused again. A worker delivers but cannot record its attempts; it keeps
    // retrying the commit (its tasks stay leased, nothing is dropped) until it is killed.
    assert_ne!(emit(&env, &db, &body).code, 0);
    worker_killed_while_it_cannot_record(&env, &db);

    disk.resize("64m");
    let mut delivered = std::collections::BTreeSet::new();
    for _ in 0..50 {
        worker_until_idle(&env, &db).ok();
        delivered.extend(
            receiver
                .drain()
                .into_iter()
                .filter_map(|r| r.delivery().map(str::to_owned)),
        );
        if accepted.iter().all(|id| delivered.contains(id)) {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let missing: Vec<_> = accepted
        .iter()
        .filter(|id| !delivered.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "accepted but never delivered: {missing:?}"
    );
    // And it takes events again.
    emit(&env, &db, &body).ok();
}

#[test]
fn an_unwritable_key_folder_is_an_error_that_names_the_key_file() {
    let Some(disk) = tmpfs_or_skip("unwritable key folder", "1m", ",ro") else {
        return;
    };
    let env = Env::new();
    let mut command = env.command(&["hook", "list"]);
    command
        .env("DJINN_HOOKS_DB", env.db())
        .env("DJINN_HOOKS_KEY_FILE", disk.path("hooks.db.key"));
    let run = crate::run_command(command, None);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("key file"), "{}", run.stderr);
    assert!(!env.db().exists(), "no database is created without its key");
}

#[test]
fn a_key_file_that_cannot_be_written_leaves_nothing_behind() {
    let Some(disk) = tmpfs_or_skip("key file on a full disk", "1m", "") else {
        return;
    };
    let filler = disk.path("filler");
    std::fs::write(&filler, vec![0; 1024 * 1024]).unwrap_or(());
    let env = Env::new();
    let db = disk.path("hooks.db");
    let list = || {
        let mut command = env.command(&["hook", "list"]);
        command.env("DJINN_HOOKS_DB", &db);
        crate::run_command(command, None)
    };
    let run = list();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("cannot write key file"),
        "{}",
        run.stderr
    );
    // No empty key file is left to lock the database out once there is room again.
    std::fs::remove_file(&filler).unwrap();
    list().ok();
}

#[test]
fn serve_answers_an_error_not_202_while_the_disk_is_full() {
    let Some(Setup {
        disk,
        env,
        db,
        receiver,
    }) = setup("serve on a full disk")
    else {
        return;
    };
    let mut command = env.command(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--allow-private-network",
        "--lease",
        "1s",
    ]);
    command.env("DJINN_HOOKS_DB", &db);
    let mut serve = crate::serve_process::spawn(&mut command, |_| {});
    let base = format!("http://{}", serve.addr.clone().expect("serve started"));
    let body = padded_event();
    let agent = crate::agent();
    let post = || crate::post_event(&agent, &base, NS, EventType::BuildSubmitted, &body);
    let mut accepted = Vec::new();
    let (status, text) = loop {
        let (status, text) = post();
        if status != 202 {
            break (status, text);
        }
        let reply: Value = serde_json::from_str(&text).unwrap();
        accepted.push(reply["event_id"].as_str().unwrap().to_owned());
        assert!(accepted.len() < 200, "a 2 MiB disk never filled up");
    };
    assert!((500..600).contains(&status), "{status}: {text}");
    assert_ne!(post().0, 202, "still full: still refused");

    disk.resize("64m");
    assert_eq!(post().0, 202, "room again: accepted again");
    let mut delivered = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !accepted.iter().all(|id| delivered.contains(id)) {
        assert!(
            Instant::now() < deadline,
            "accepted but not delivered within 30 s"
        );
        if let Some(got) = receiver.next_timeout(Duration::from_millis(200)) {
            delivered.extend(got.delivery().map(str::to_owned));
        }
    }
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
}
