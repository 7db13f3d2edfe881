//! A small Chrome DevTools Protocol client: Debian's `chromium` started headless, one page
//! driven over one WebSocket (flattened sessions), what its console and scripts report kept.
//! Enough for the UI test: navigate, evaluate, click and type as a user would, screenshots.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;
type Sink = futures::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// What the page reported as an error: an uncaught exception, `console.error`, or a
/// browser log entry at level error (a failed request among them).
#[derive(Clone, Debug)]
pub struct PageError {
    pub source: String,
    pub text: String,
}

/// A request the page sent, as the network saw it (after `record_requests`).
#[derive(Clone, Debug)]
pub struct SentRequest {
    pub method: String,
    pub url: String,
    pub headers: Value,
}

impl SentRequest {
    /// A header's value, its name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        let headers = self.headers.as_object()?;
        let (_, value) = headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name))?;
        value.as_str()
    }
}

pub struct Browser {
    child: Child,
    sink: tokio::sync::Mutex<Sink>,
    next_id: AtomicU64,
    pending: Pending,
    errors: Arc<Mutex<Vec<PageError>>>,
    requests: Arc<Mutex<Vec<SentRequest>>>,
    session: String,
    _profile: tempfile::TempDir,
    reader: tokio::task::JoinHandle<()>,
}

/// Debian's package installs `/usr/bin/chromium`; `CHROMIUM` names another.
fn chromium_binary() -> PathBuf {
    std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| "chromium".into())
}

impl Browser {
    /// A headless browser with one blank page of `width`×`height` CSS pixels.
    pub async fn start(width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().expect("a browser profile directory");
        let mut child = Command::new(chromium_binary())
            .args([
                "--headless=new",
                // The tests run as root, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                &format!("--window-size={width},{height}"),
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts (scripts/test.sh installs Debian's chromium package)");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (found, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    if !sent {
                        let _ = found.send(url.trim().to_owned());
                        sent = true;
                    }
                }
            }
        });
        let url = address
            .recv_timeout(Duration::from_secs(30))
            .expect("chromium prints its DevTools address within 30 s");
        let (socket, _) =
            tokio_tungstenite::connect_async(url.as_str()).await.expect("the DevTools socket");
        let (sink, mut stream) = socket.split();
        let pending: Pending = Arc::default();
        let errors: Arc<Mutex<Vec<PageError>>> = Arc::default();
        let requests: Arc<Mutex<Vec<SentRequest>>> = Arc::default();
        let reader = {
            let pending = pending.clone();
            let errors = errors.clone();
            let requests = requests.clone();
            tokio::spawn(async move {
                while let Some(Ok(message)) = stream.next().await {
                    let Message::Text(text) = message else { continue };
                    let Ok(message) = serde_json::from_str::<Value>(&text) else { continue };
                    if let Some(id) = message["id"].as_u64() {
                        let answer = match message.get("error") {
                            Some(error) => Err(error.to_string()),
                            None => Ok(message["result"].clone()),
                        };
                        if let Some(reply) = pending.lock().expect("pending").remove(&id) {
                            let _ = reply.send(answer);
                        }
                    } else if let Some(error) = page_error(&message) {
                        errors.lock().expect("errors").push(error);
                    } else if message["method"] == "Network.requestWillBeSent" {
                        let request = &message["params"]["request"];
                        requests.lock().expect("requests").push(SentRequest {
                            method: request["method"].as_str().unwrap_or("").to_owned(),
                            url: request["url"].as_str().unwrap_or("").to_owned(),
                            headers: request["headers"].clone(),
                        });
                    }
                }
            })
        };
        let mut browser = Browser {
            child,
            sink: tokio::sync::Mutex::new(sink),
            next_id: AtomicU64::new(1),
            pending,
            errors,
            requests,
            session: String::new(),
            _profile: profile,
            reader,
        };
        let target =
            browser.browser_call("Target.createTarget", json!({"url": "about:blank"})).await;
        let attached = browser
            .browser_call(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        browser.session = attached["sessionId"].as_str().expect("a session id").to_owned();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            browser.call(domain, json!({})).await;
        }
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
            )
            .await;
        browser
    }

    async fn send(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let (reply, answer) = oneshot::channel();
        self.pending.lock().expect("pending").insert(id, reply);
        self.sink
            .lock()
            .await
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("the DevTools socket takes a command");
        match tokio::time::timeout(CALL_TIMEOUT, answer).await {
            Ok(Ok(Ok(result))) => result,
            Ok(Ok(Err(error))) => panic!("{method} failed: {error}"),
            Ok(Err(_)) => panic!("{method}: the DevTools socket closed"),
            Err(_) => panic!("{method}: no answer within {CALL_TIMEOUT:?}"),
        }
    }

    async fn browser_call(&self, method: &str, params: Value) -> Value {
        self.send(None, method, params).await
    }

    /// A command to the page.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        self.send(Some(&self.session.clone()), method, params).await
    }

    pub async fn navigate(&self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
    }

    /// The value of a JavaScript expression (awaited if it is a promise); a thrown error
    /// fails the test.
    pub async fn eval(&self, expression: &str) -> Value {
        let answer = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(details) = answer.get("exceptionDetails") {
            panic!("{expression} threw: {details}");
        }
        answer["result"]["value"].clone()
    }

    /// Polls `expression` until it yields something other than null, false or undefined.
    pub async fn wait_for(&self, what: &str, expression: &str, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let value = self.eval(expression).await;
            if !(value.is_null() || value == json!(false)) {
                return value;
            }
            if tokio::time::Instant::now() > deadline {
                let text = self.eval("document.querySelector('main').innerText").await;
                panic!("waited {timeout:?} for {what}; the page shows:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A real mouse click in the middle of the element `selector` names.
    pub async fn click(&self, selector: &str) {
        let selector_json = json!(selector).to_string();
        let point = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({selector_json}); if (!e) return null; \
                 e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                 return [r.left + r.width / 2, r.top + r.height / 2]; }})()"
            ))
            .await;
        let [x, y] = [point[0].as_f64(), point[1].as_f64()];
        let (Some(x), Some(y)) = (x, y) else { panic!("nothing on the page matches {selector}") };
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// A key pressed and released, as the keyboard sends it (`Tab`, `Home`, `Enter`, `3`).
    pub async fn key(&self, key: &str, code: &str, key_code: u32) {
        // Enter types a carriage return: that is what activates a focused link.
        let text = match key {
            "Enter" => "\r",
            single if single.chars().count() == 1 => single,
            _ => "",
        };
        for kind in ["keyDown", "keyUp"] {
            let mut params = json!({"type": kind, "key": key, "code": code,
                                    "windowsVirtualKeyCode": key_code});
            if kind == "keyDown" && !text.is_empty() {
                params["text"] = json!(text);
            }
            self.call("Input.dispatchKeyEvent", params).await;
        }
    }

    /// Types text into whatever has focus.
    pub async fn type_text(&self, text: &str) {
        self.call("Input.insertText", json!({"text": text})).await;
    }

    pub async fn screenshot(&self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"})).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("the screenshot is base64");
        std::fs::write(path, png).expect("the screenshot is written");
    }

    pub fn errors(&self) -> Vec<PageError> {
        self.errors.lock().expect("errors").clone()
    }

    /// From now on, what the page requests is kept (`requests`), and may be blocked.
    pub async fn record_requests(&self) {
        self.call("Network.enable", json!({})).await;
    }

    /// The requests the page sent since `record_requests`, oldest first.
    pub fn requests(&self) -> Vec<SentRequest> {
        self.requests.lock().expect("requests").clone()
    }

    /// Requests whose URL matches one of `patterns` (`*` for any text) fail as if the
    /// network refused them; an empty list lets everything through again. Needs
    /// `record_requests`.
    pub async fn block(&self, patterns: &[&str]) {
        self.call("Network.setBlockedURLs", json!({ "urls": patterns })).await;
    }
}

fn page_error(message: &Value) -> Option<PageError> {
    let params = &message["params"];
    match message["method"].as_str()? {
        "Runtime.exceptionThrown" => Some(PageError {
            source: "exception".to_owned(),
            text: params["exceptionDetails"].to_string(),
        }),
        "Runtime.consoleAPICalled" if params["type"] == "error" => {
            Some(PageError { source: "console".to_owned(), text: params["args"].to_string() })
        }
        "Log.entryAdded" if params["entry"]["level"] == "error" => Some(PageError {
            source: params["entry"]["source"].as_str().unwrap_or("log").to_owned(),
            text: format!(
                "{} {}",
                params["entry"]["text"].as_str().unwrap_or(""),
                params["entry"]["url"].as_str().unwrap_or("")
            ),
        }),
        _ => None,
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.reader.abort();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
