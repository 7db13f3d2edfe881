//! The operator's calls on the cluster itself: members, leadership, backups
//! (`/corral/v1/members`, `/corral/v1/leader/transfer`, `/corral/v1/snapshot`).
//!
//! `masters` is one address or several separated by commas; each is tried in turn until one
//! answers, and a follower's 307 to the leader is followed (reqwest re-sends the body). A
//! client with a token follows the 307 itself: reqwest drops `Authorization` on a redirect to
//! another port, and every master listens on its own.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Error;

/// One master as `GET /corral/v1/members` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub node_id: u64,
    pub address: String,
    /// `leader`, `voter` or `learner`.
    pub role: String,
    /// The leader heard from it lately (the answering master knows only about itself when it
    /// is not the leader).
    pub up: bool,
    pub silent_ms: Option<u64>,
    pub matched_index: Option<u64>,
    pub lag: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    /// The master that answered.
    pub node_id: u64,
    pub leader: Option<u64>,
    pub leader_address: Option<String>,
    pub term: u64,
    pub members: Vec<MemberView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transferred {
    pub from: u64,
    pub leader: u64,
    pub leader_address: Option<String>,
    pub term: u64,
}

/// A backup file as served, with what its headers say.
#[derive(Clone, Debug)]
pub struct SnapshotDownload {
    pub bytes: bytes::Bytes,
    pub index: u64,
    pub term: u64,
    pub digest: String,
}

/// Calls on the cluster through whichever of `masters` answers.
#[derive(Clone)]
pub struct ClusterClient {
    http: reqwest::Client,
    masters: Vec<String>,
    /// Sent as `Authorization: Bearer` on every request, redirects included.
    token: Option<String>,
}

/// How many redirects a client with a token follows (a follower names the leader; a second
/// hop only happens when leadership moved in between).
const MAX_REDIRECTS: usize = 3;

impl ClusterClient {
    pub fn new(http: reqwest::Client, masters: &str) -> ClusterClient {
        let masters = masters
            .split(',')
            .map(str::trim)
            .filter(|master| !master.is_empty())
            .map(str::to_owned)
            .collect();
        ClusterClient { http, masters, token: None }
    }

    /// A client that sends `token` on every request; it builds its own HTTP client, one that
    /// leaves redirects to this one (see the module's comment).
    pub fn with_token(
        masters: &str,
        token: Option<String>,
        timeout: std::time::Duration,
    ) -> Result<ClusterClient, Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|error| Error::Protocol {
                url: masters.to_owned(),
                problem: format!("cannot build an HTTP client: {error}"),
            })?;
        Ok(ClusterClient { token, ..ClusterClient::new(http, masters) })
    }

    /// Any call on the native API: the answer's JSON, `Value::Null` for an empty answer
    /// (`204`). A status that is not a success is an `Error::Status` with the body.
    pub async fn request_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, Error> {
        let answer = self.call(method, path, body).await?;
        let url = answer.url;
        let bytes = answer.response.bytes().await.map_err(|error| Error::Protocol {
            url: url.clone(),
            problem: format!("the answer broke off: {error}"),
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|error| Error::Protocol { url, problem: format!("not JSON: {error}") })
    }

    pub async fn members(&self) -> Result<Members, Error> {
        self.call(reqwest::Method::GET, "/corral/v1/members", None).await?.json_as().await
    }

    /// Returns once the new master votes (it catches up first; this can take a while).
    pub async fn add_member(&self, node_id: u64, address: &str) -> Result<Members, Error> {
        let body = json!({"node_id": node_id, "address": address});
        self.call(reqwest::Method::POST, "/corral/v1/members", Some(body)).await?.json_as().await
    }

    pub async fn remove_member(&self, node_id: u64) -> Result<Members, Error> {
        let path = format!("/corral/v1/members/{node_id}");
        self.call(reqwest::Method::DELETE, &path, None).await?.json_as().await
    }

    pub async fn transfer_leader(&self, to: u64) -> Result<Transferred, Error> {
        let path = format!("/corral/v1/leader/transfer?to={to}");
        self.call(reqwest::Method::POST, &path, None).await?.json_as().await
    }

    /// A backup that includes everything committed before the call.
    pub async fn snapshot(&self) -> Result<SnapshotDownload, Error> {
        let answer = self
            .call(reqwest::Method::GET, "/corral/v1/snapshot?consistency=linearizable", None)
            .await?;
        let header = |name: &str| {
            answer
                .response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| Error::Protocol {
                    url: answer.url.clone(),
                    problem: format!("no {name} header"),
                })
        };
        let number = |name: &str| {
            header(name)?.parse::<u64>().map_err(|error| Error::Protocol {
                url: answer.url.clone(),
                problem: format!("{name}: {error}"),
            })
        };
        let (index, term, digest) = (
            number("corral-snapshot-index")?,
            number("corral-snapshot-term")?,
            header("corral-snapshot-digest")?,
        );
        let url = answer.url.clone();
        let bytes = answer.response.bytes().await.map_err(|error| Error::Protocol {
            url,
            problem: format!("the snapshot broke off: {error}"),
        })?;
        Ok(SnapshotDownload { bytes, index, term, digest })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Answer, Error> {
        let mut last = None;
        for master in &self.masters {
            let mut url = format!("http://{master}{path}");
            let mut redirects = 0;
            let response = loop {
                let mut request = self.http.request(method.clone(), &url);
                if let Some(body) = &body {
                    request = request.json(body);
                }
                if let Some(token) = &self.token {
                    request = request.bearer_auth(token);
                }
                match request.send().await {
                    Ok(response)
                        if response.status().is_redirection() && redirects < MAX_REDIRECTS =>
                    {
                        redirects += 1;
                        url = redirect_target(&url, &response)?;
                    }
                    other => break other,
                }
            };
            match response {
                Ok(response) if response.status().is_success() => {
                    return Ok(Answer { url, response })
                }
                Ok(response) => return Err(Error::from_response(&url, response).await),
                // A master that is down: the next one may answer.
                Err(source) => last = Some(Error::Unreachable { url, source }),
            }
        }
        Err(last.unwrap_or_else(|| Error::Protocol {
            url: path.to_owned(),
            problem: "no master address given".to_owned(),
        }))
    }
}

/// Where a redirect points, resolved against the URL that answered it.
fn redirect_target(url: &str, response: &reqwest::Response) -> Result<String, Error> {
    let protocol = |problem: String| Error::Protocol { url: url.to_owned(), problem };
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .ok_or_else(|| protocol(format!("answered {} with no Location", response.status())))?
        .to_str()
        .map_err(|_| protocol("the Location header is not text".to_owned()))?;
    response
        .url()
        .join(location)
        .map(String::from)
        .map_err(|error| protocol(format!("the Location {location:?} is not a URL: {error}")))
}

struct Answer {
    url: String,
    response: reqwest::Response,
}

impl Answer {
    async fn json_as<T: serde::de::DeserializeOwned>(self) -> Result<T, Error> {
        let url = self.url;
        self.response.json().await.map_err(|error| Error::Protocol {
            url,
            problem: format!("unexpected answer: {error}"),
        })
    }
}
