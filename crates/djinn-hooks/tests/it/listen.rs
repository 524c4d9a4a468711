//! `listen`: the receiver answers 204 on a valid signature, 401 otherwise, prints each delivery,
//! and stops on SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

use crate::{Env, agent};
use djinn_hook_sign::headers;

const BODY: &str = r#"{"action":"created","variable":{"id":7,"key":"PGADDR"}}"#;

/// Starts `listen` on a free port and returns the child and its base URL.
fn start(env: &Env, extra: &[&str]) -> (std::process::Child, String) {
    let mut args = vec!["listen", "--listen", "127.0.0.1:0", "--secret", "s3cret"];
    args.extend_from_slice(extra);
    let mut child = env
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn listen");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (child, url)
}

fn post(url: &str, signature: Option<&str>) -> u16 {
    let mut request = agent()
        .post(url)
        .header(headers::EVENT, "variables")
        .header(headers::DELIVERY, "0b7e8a49-2c1f-4b8e-9d55-1f1d3f0a7c11")
        .header(headers::HOOK_ID, "3");
    if let Some(signature) = signature {
        request = request.header(headers::SIGNATURE, signature);
    }
    request
        .send(BODY)
        .expect("POST to listen")
        .status()
        .as_u16()
}

fn stop(mut child: std::process::Child) -> (i32, String) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let code = child.wait().unwrap().code().unwrap_or(-1);
    (code, stdout)
}

#[test]
fn listen_checks_signatures_and_prints_each_delivery() {
    let env = Env::new();
    let signature = env.run(&["sign", "--secret", "s3cret"], Some(BODY.as_bytes()));
    let signature = signature.ok().trim().to_owned();
    let wrong = env.run(&["sign", "--secret", "other"], Some(BODY.as_bytes()));
    let wrong = wrong.ok().trim().to_owned();

    let (child, url) = start(&env, &[]);
    assert_eq!(post(&url, Some(&signature)), 204);
    assert_eq!(post(&url, Some(&wrong)), 401);
    assert_eq!(post(&url, None), 401);
    let (code, stdout) = stop(child);
    assert_eq!(code, 0, "listen exits 0 on SIGTERM");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "variables  0b7e8a49-2c1f-4b8e-9d55-1f1d3f0a7c11  hook 3  signature ok  created variable 7",
            "variables  0b7e8a49-2c1f-4b8e-9d55-1f1d3f0a7c11  hook 3  signature INVALID  created variable 7",
            "variables  0b7e8a49-2c1f-4b8e-9d55-1f1d3f0a7c11  hook 3  signature missing  created variable 7",
        ]
    );
}

#[test]
fn listen_json_prints_the_full_body() {
    let env = Env::new();
    let signature = env.run(&["sign", "--secret", "s3cret"], Some(BODY.as_bytes()));
    let signature = signature.ok().trim().to_owned();
    let (child, url) = start(&env, &["--json"]);
    assert_eq!(post(&url, Some(&signature)), 204);
    let (code, stdout) = stop(child);
    assert_eq!(code, 0);
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["event"], "variables");
    assert_eq!(line["hook_id"], "3");
    assert_eq!(line["signature_valid"], true);
    assert_eq!(line["body"]["variable"]["key"], "PGADDR");
}
