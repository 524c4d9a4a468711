//! The tab in a real browser: headless Chromium driven through chromedriver (WebDriver).
//!
//! Sign in, create a webhook through the form (after a refused first try), send a test
//! delivery, open it, redeliver, edit the events and add a custom header, remove the secret,
//! run a bulk recovery, delete; a screenshot
//! of each page goes to `target/ui-screenshots/`. The UI is nested under `/ci/hooks` of an
//! application's router, as an embedding CI server mounts it, so every link, form, redirect
//! and cookie the browser follows must carry the mount.
//!
//! Without chromedriver and Chromium the test says plainly that it did not run, and passes;
//! with `DJINN_TEST_BROWSER_REQUIRED=1` (CI) a missing browser fails it.
//! `DJINN_CHROMEDRIVER` and `DJINN_CHROMIUM` name other binaries than the defaults.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use djinn_hook_sign::headers;
use djinn_hook_testkit::wait_for_async;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::{Receiver, Ui};

const REQUIRED: &str = "DJINN_TEST_BROWSER_REQUIRED";

/// chromedriver on a loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary(env: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    path.is_file().then_some(path)
}

/// Starts chromedriver, or says why it cannot.
fn start_driver() -> Result<(Driver, PathBuf), String> {
    let driver = binary("DJINN_CHROMEDRIVER", "/usr/bin/chromedriver").ok_or(
        "chromedriver not found (install Debian's chromium-driver, or set DJINN_CHROMEDRIVER)",
    )?;
    let chromium = binary("DJINN_CHROMIUM", "/usr/bin/chromium")
        .ok_or("chromium not found (install Debian's chromium, or set DJINN_CHROMIUM)")?;
    // A free loopback port: taken from the kernel, released, given to chromedriver.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let mut child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", driver.display()))?;
    // It prints one line when it listens (or fails to).
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("started successfully") => return Ok((driver, chromium)),
            Ok(_) => {}
            Err(_) => return Err("chromedriver did not report that it started within 20 s".into()),
        }
    }
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(client: &Client, dir: &Path, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn body_text(client: &Client) -> String {
    client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Types `text` into the field with id `id`.
async fn type_into(
    client: &Client,
    id: &str,
    text: &str,
) -> Result<(), fantoccini::error::CmdError> {
    client.find(Locator::Id(id)).await?.send_keys(text).await
}

/// Clicks the button whose text is `label` and waits for the page it leads to.
async fn press(client: &Client, label: &str) {
    let button = client
        .find(Locator::XPath(&format!(
            "//button[normalize-space()='{label}']"
        )))
        .await
        .unwrap_or_else(|e| panic!("no {label:?} button: {e}"));
    click_through(client, &button, label).await;
}

/// Follows the link whose text is `text`.
async fn follow(client: &Client, text: &str) {
    let link = client
        .find(Locator::LinkText(text))
        .await
        .unwrap_or_else(|e| panic!("no {text:?} link: {e}"));
    click_through(client, &link, text).await;
}

/// Clicks `element` and waits until the page it was on is gone (its `main` is stale) and
/// the next one is in: a click returns before the navigation it starts is over.
async fn click_through(client: &Client, element: &fantoccini::elements::Element, what: &str) {
    let old = client.find(Locator::Css("main")).await.unwrap();
    element.click().await.unwrap();
    wait_for_async(&format!("a new page after clicking {what:?}"), || async {
        old.tag_name().await.is_err().then_some(())
    })
    .await;
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("main"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_does_everything_in_chromium() {
    let required = std::env::var(REQUIRED).is_ok_and(|v| v == "1");
    let (driver, chromium) = match start_driver() {
        Ok(found) => found,
        Err(why) if required => panic!("browser test required ({REQUIRED}=1) but: {why}"),
        Err(why) => {
            // Straight to stderr, past the test harness's capture of `println!`, so the
            // person running `cargo test` sees it even though the test passes.
            let _ = writeln!(
                std::io::stderr(),
                "\nBROWSER TESTS NOT RUN: {why}. Set {REQUIRED}=1 to make this a failure.\n"
            );
            return;
        }
    };
    let started = Instant::now();
    let ui = Ui::tokens();
    let receiver = Receiver::start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/ci/hooks", listener.local_addr().unwrap());
    let app = axum::Router::new().nest("/ci/hooks", ui.router.clone());
    tokio::spawn(axum::serve(listener, app).into_future());

    let profile = tempfile::tempdir().unwrap();
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1100,900",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }
    });
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps.as_object().unwrap().clone())
        .connect(&driver.url)
        .await
        .expect("a Chromium session");
    let dir = screenshots_dir();
    let result = run(&client, &ui, &receiver, &base, &dir).await;
    let _ = client.close().await;
    drop(driver);
    result.unwrap();
    println!(
        "browser test: {:.1}s, screenshots in {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
}

async fn run(
    client: &Client,
    ui: &Ui,
    receiver: &Receiver,
    base: &str,
    dir: &Path,
) -> Result<(), fantoccini::error::CmdError> {
    // Sign in: every page sends a signed-out visitor to the sign-in form.
    client.goto(&format!("{base}/ui/")).await?;
    assert_eq!(client.current_url().await?.path(), "/ci/hooks/ui/signin");
    shot(client, dir, "01-sign-in").await;
    type_into(client, "token", "writer").await?;
    press(client, "Sign in").await;
    let text = body_text(client).await;
    assert!(text.contains("Namespaces"), "{text}");

    // Open a namespace from the index.
    type_into(client, "ns", "alice/ci").await?;
    press(client, "Open").await;
    assert!(
        body_text(client)
            .await
            .contains("Add a webhook to notify external services of events.")
    );
    shot(client, dir, "02-list-empty").await;

    // Create: the first try is refused (certificate checks on a plain-http URL) and keeps
    // what was typed apart from the secret.
    follow(client, "Create webhook").await;
    let url = receiver.url("/ok");
    type_into(client, "payload_url", &url).await?;
    type_into(client, "secret", "s3cret").await?;
    shot(client, dir, "03-create").await;
    press(client, "Create").await;
    let text = body_text(client).await;
    assert!(text.contains("requires an https payload_url"), "{text}");
    let kept = client
        .find(Locator::Id("payload_url"))
        .await?
        .prop("value")
        .await?;
    assert_eq!(kept.as_deref(), Some(url.as_str()));
    let secret = client
        .find(Locator::Id("secret"))
        .await?
        .prop("value")
        .await?;
    assert_eq!(secret.as_deref(), Some(""));
    shot(client, dir, "04-create-refused").await;
    client
        .find(Locator::Css("input[name=ssl]"))
        .await?
        .click()
        .await?;
    type_into(client, "secret", "s3cret").await?;
    press(client, "Create").await;
    assert!(body_text(client).await.contains("Webhook created"));
    let hooks = ui.store.webhooks("alice/ci").unwrap();
    assert_eq!(hooks.len(), 1);
    assert!(hooks[0].has_secret && !hooks[0].ssl);
    shot(client, dir, "05-list").await;

    // Send a test delivery and open it.
    follow(client, &url).await;
    press(client, "Send test delivery").await;
    let text = body_text(client).await;
    assert!(text.contains("Test delivery sent"), "{text}");
    assert!(
        text.contains(&format!("{}: sha256=", headers::SIGNATURE)),
        "{text}"
    );
    assert!(
        text.contains("<script>alert('pwned')</script>"),
        "shown as text: {text}"
    );
    shot(client, dir, "06-delivery").await;

    // Redeliver: back on the hook, the redelivery listed and marked.
    press(client, "Redeliver").await;
    let text = body_text(client).await;
    assert!(text.contains("Webhook delivery queued"), "{text}");
    let marks = client.find_all(Locator::Css("ul.rows .icon-sync")).await?;
    assert_eq!(marks.len(), 1);
    shot(client, dir, "07-hook-after-redelivery").await;

    // Edit the events: only cron and invite.rejected.
    for event in djinn_hook_payload::EventType::ALL {
        let name = event.name();
        let boxed = client
            .find(Locator::Css(&format!("input[name=events][value='{name}']")))
            .await?;
        let want = name == "cron" || name == "invite.rejected";
        if boxed.is_selected().await? != want {
            boxed.click().await?;
        }
    }
    // And a custom header, shown masked once saved.
    type_into(client, "headers", "X-Api-Key: k3y-in-the-browser").await?;
    press(client, "Save").await;
    assert!(body_text(client).await.contains("Webhook has been updated"));
    let hook = ui.store.webhook(hooks[0].id).unwrap().unwrap();
    assert_eq!(hook.events.names(), ["invite.rejected", "cron"]);
    assert!(hook.has_secret, "a blank secret keeps it");
    assert_eq!(hook.headers, ["X-Api-Key"]);
    let shown = client
        .find(Locator::Id("headers"))
        .await?
        .prop("value")
        .await?;
    assert_eq!(shown.as_deref(), Some("X-Api-Key: ***\n"));

    // Remove the secret.
    client
        .find(Locator::Css("input[name=remove_secret]"))
        .await?
        .click()
        .await?;
    press(client, "Save").await;
    assert!(!ui.store.webhook(hook.id).unwrap().unwrap().has_secret);
    assert!(body_text(client).await.contains("No secret is set"));
    assert_eq!(
        ui.store.webhook(hook.id).unwrap().unwrap().headers,
        ["X-Api-Key"],
        "kept"
    );
    shot(client, dir, "08-hook-edited").await;

    // At phone width the page still fits: nothing wider than the window.
    client.set_window_size(390, 844).await?;
    let overflow = client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await?;
    assert_eq!(
        overflow,
        json!(true),
        "the edit page scrolls sideways at 390 px"
    );
    shot(client, dir, "09-hook-phone").await;
    client.set_window_size(1100, 900).await?;

    // The keyboard reaches the skip link first.
    client
        .find(Locator::Css("body"))
        .await?
        .send_keys("\u{E004}")
        .await?;
    let focused = client.active_element().await?.text().await?;
    assert_eq!(focused, "Skip to content");

    // A bulk recovery of the last day's failed deliveries: none failed, none queued.
    press(client, "Send again").await;
    let text = body_text(client).await;
    assert!(
        text.contains("0 deliveries queued to be sent again"),
        "{text}"
    );

    // Delete.
    press(client, "Delete webhook").await;
    let text = body_text(client).await;
    assert!(text.contains("Webhook has been deleted"), "{text}");
    assert!(text.contains("Add a webhook to notify external services of events."));
    assert!(ui.store.webhooks("alice/ci").unwrap().is_empty());
    shot(client, dir, "10-deleted").await;

    // Sign out: the pages are closed again.
    press(client, "Sign out").await;
    assert!(client.current_url().await?.path().ends_with("/ui/signin"));
    client.goto(&format!("{base}/ui/")).await?;
    assert!(client.current_url().await?.path().ends_with("/ui/signin"));
    Ok(())
}
