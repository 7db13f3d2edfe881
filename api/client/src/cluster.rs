//! The operator's calls on the cluster itself: members, leadership, backups
//! (`/corral/v1/members`, `/corral/v1/leader/transfer`, `/corral/v1/snapshot`).
//!
//! `masters` is one address or several separated by commas; each is tried in turn until one
//! answers, and a follower's 307 to the leader is followed (reqwest re-sends the body).

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
}

impl ClusterClient {
    pub fn new(http: reqwest::Client, masters: &str) -> ClusterClient {
        let masters = masters
            .split(',')
            .map(str::trim)
            .filter(|master| !master.is_empty())
            .map(str::to_owned)
            .collect();
        ClusterClient { http, masters }
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
            let url = format!("http://{master}{path}");
            let mut request = self.http.request(method.clone(), &url);
            if let Some(body) = &body {
                request = request.json(body);
            }
            match request.send().await {
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
