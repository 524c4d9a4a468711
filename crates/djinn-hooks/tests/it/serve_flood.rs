//! `serve` under a connection flood and a low file-descriptor limit, as a separate process: it
//! raises its soft limit to the hard one at start, and when accepting fails (EMFILE) it pauses
//! and goes on, answering its open connections meanwhile and new ones after.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use djinn_hook_testkit::wait_for_ok;

use crate::Env;
use crate::serve::Serve;

/// `serve` started by `sh` after `ulimit {ulimit_args}` (e.g. `-n 48`).
fn start(env: &Env, ulimit_args: &str) -> Serve {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit {ulimit_args} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_djinn-hooks"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(env.path(""))
        .env("DJINN_HOOKS_DB", env.db())
        .env_remove("DJINN_HOOKS_KEY_FILE")
        .env_remove("DJINN_HOOKS_TOKENS");
    Serve::spawn(command, None)
}

/// Sends `GET /healthz` on `stream` (kept alive) and returns the status line.
fn healthz(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    // Read the rest of the answer: headers, then the body by Content-Length.
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    status.trim_end().to_owned()
}

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

#[test]
fn the_soft_fd_limit_is_raised_to_the_hard_limit() {
    let env = Env::new();
    let serve = start(&env, "-S -n 64");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", serve.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers[0], numbers[1], "soft = hard: {line}");
    assert!(
        serve
            .logs()
            .contains(&format!("max_open_files={}", numbers[1])),
        "{}",
        serve.logs()
    );
}

#[test]
fn a_connection_flood_past_the_fd_limit_never_stops_the_listener() {
    let env = Env::new();
    let mut serve = start(&env, "-n 48");
    let mut early = connect(serve.base.trim_start_matches("http://"));
    assert_eq!(healthz(&mut early), "HTTP/1.1 200 OK");

    // More connections than the process may have files: accepting fails with EMFILE.
    let flood: Vec<TcpStream> = (0..80)
        .map(|_| connect(serve.base.trim_start_matches("http://")))
        .collect();
    serve.wait_for_log("accepting a connection failed");
    assert!(
        serve.logs().contains("Too many open files"),
        "{}",
        serve.logs()
    );
    // During the flood: an open connection is still answered.
    assert_eq!(healthz(&mut early), "HTTP/1.1 200 OK");

    // After it: new connections are accepted and answered again.
    drop(flood);
    wait_for_ok("a new connection answered", || {
        let mut fresh = connect(serve.base.trim_start_matches("http://"));
        if healthz(&mut fresh) == "HTTP/1.1 200 OK" {
            Ok(())
        } else {
            Err(serve.logs())
        }
    });
    assert!(
        serve.child.try_wait().unwrap().is_none(),
        "serve is still running"
    );
}
