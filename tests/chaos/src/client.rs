//! HTTP to the masters, and how an answer becomes `ok`, `fail` or `info`.

use std::time::Duration;

use serde_json::Value;

use crate::history::Outcome;

/// What came back from one request.
#[derive(Debug)]
pub enum Reply {
    Status(u16, Value),
    /// No connection could be made: the request never reached a master.
    NotSent(String),
    /// Sent, but no answer in time (or the connection broke): it may have taken effect.
    Unknown(String),
}

/// Clients for the workloads: they follow redirects (307 keeps method and body), as the
/// Mesos and Marathon client libraries do.
pub fn following(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_millis(500))
        .pool_max_idle_per_host(2)
        .build()
        .expect("a reqwest client with fixed settings builds")
}

/// For probes and status polls: no redirects, short timeouts.
pub fn direct(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a reqwest client with fixed settings builds")
}

pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Ok(bytes) => {
                    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(&bytes).into_owned())
                    });
                    Reply::Status(status, body)
                }
                Err(error) => Reply::Unknown(format!("reading the answer: {error}")),
            }
        }
        Err(error) if error.is_connect() => Reply::NotSent(error.to_string()),
        Err(error) if error.is_timeout() => Reply::Unknown(format!("timeout: {error}")),
        Err(error) => Reply::Unknown(error.to_string()),
    }
}

/// A write: 2xx happened; 4xx (refused, invalid) certainly did not; a connection never made
/// did not; everything else — a timeout, 5xx, a 307 left over when redirects ran out, 503
/// "no leader" (the command may have been proposed before leadership moved) — is unknown.
pub fn write_outcome(reply: &Reply) -> (Outcome, Option<String>) {
    match reply {
        Reply::Status(status, _) if (200..300).contains(status) => (Outcome::Ok, None),
        Reply::Status(status, body) if (400..500).contains(status) => {
            (Outcome::Fail, Some(format!("{status}: {body}")))
        }
        Reply::Status(status, body) => (Outcome::Info, Some(format!("{status}: {body}"))),
        Reply::NotSent(error) => (Outcome::Fail, Some(error.clone())),
        Reply::Unknown(error) => (Outcome::Info, Some(error.clone())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{write_outcome, Reply};
    use crate::history::Outcome;

    #[test]
    fn only_certain_answers_are_ok_or_fail() {
        assert_eq!(write_outcome(&Reply::Status(200, json!({}))).0, Outcome::Ok);
        assert_eq!(write_outcome(&Reply::Status(201, json!({}))).0, Outcome::Ok);
        assert_eq!(write_outcome(&Reply::Status(409, json!({}))).0, Outcome::Fail);
        assert_eq!(write_outcome(&Reply::Status(503, json!({}))).0, Outcome::Info);
        assert_eq!(write_outcome(&Reply::Status(307, json!({}))).0, Outcome::Info);
        assert_eq!(write_outcome(&Reply::NotSent("refused".into())).0, Outcome::Fail);
        assert_eq!(write_outcome(&Reply::Unknown("timeout".into())).0, Outcome::Info);
    }
}
