//! `djinn-hooks serve` as a child process for the benches that load it (`serve`, `intake`,
//! `callgrind`): started with its defaults on a given database, its address read from its log,
//! stopped with SIGTERM.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

#[path = "../../tests/it/serve_process.rs"]
mod serve_process;

/// A running `serve`, killed on drop.
pub(crate) struct Serve {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
}

impl Serve {
    /// `serve --listen 127.0.0.1:0 --allow-private-network` in `dir` on `db` (a file or a
    /// `postgres://` URL), with no token, no config file and no key file from the environment:
    /// a SQLite store keeps its key beside the file; for PostgreSQL one is written into `dir`.
    /// `wrap` (say, `["valgrind", "--tool=callgrind"]`) runs it under that command.
    /// `DJINN_BENCH_BIN` runs another build of `djinn-hooks` (a copy saved before a change).
    pub(crate) fn start(dir: &Path, db: &str, wrap: &[&str]) -> Serve {
        let binary = std::env::var("DJINN_BENCH_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_djinn-hooks").to_owned());
        let mut command = match wrap.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--allow-private-network",
            ])
            .current_dir(dir)
            .env("DJINN_HOOKS_DB", db)
            .env_remove("DJINN_HOOKS_TOKENS")
            .env_remove("DJINN_HOOKS_KEY_FILE")
            .env_remove("DJINN_HOOKS_CONFIG");
        if db.starts_with("postgres") {
            command.env("DJINN_HOOKS_KEY_FILE", key_file(dir));
        }
        // Reads (and drops) the log lines, so the pipe never fills.
        let spawned = serve_process::spawn(&mut command, drop);
        // Not joined: it ends when `serve` does.
        drop(spawned.reader);
        let addr = spawned.addr.expect("serve printed its address");
        Serve {
            child: spawned.child,
            base: format!("http://{addr}"),
        }
    }

    /// Creates a webhook in namespace `ns` from `body`, its JSON as the API takes it; it must
    /// be created.
    pub(crate) fn create_webhook(&self, ns: &str, body: &str) {
        let created = ureq::post(format!("{}/n/{ns}/-/webhooks", self.base))
            .header("Content-Type", "application/json")
            .send(body)
            .expect("create the webhook");
        assert_eq!(created.status().as_u16(), 201);
    }

    /// The process's id (of the wrapper, if it runs under one).
    #[allow(dead_code, reason = "only the cost bench attaches to it")]
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `kB` line of the server's `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
    pub(crate) fn memory(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// SIGTERM and wait (`patience` at most), then SIGKILL; whether it exited on SIGTERM.
    pub(crate) fn stop(mut self, patience: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A random store key in `dir/bench.key` (mode 0600: a key file others may read is refused),
/// written once: the key `serve` is started with, which a bench's own worker may share.
pub(crate) fn key_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("bench.key");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        let key = djinn_hook_store::SecretKey::generate().expect("a key");
        file.write_all(key.as_bytes()).expect("write the key file");
    }
    path
}
