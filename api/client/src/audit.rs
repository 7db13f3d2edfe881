//! The audit API (`/corral/v1/history`, `/state`, `/diff`, `/explain/…`) as JSON values,
//! asked of one master: every master answers from its own journal.

use serde_json::Value;

use crate::Error;

/// A point in the log as the CLI takes it: a cursor `INDEX[-SEQ]` or a time (RFC 3339 or,
/// for `--at`, epoch seconds).
pub fn point_parameter(text: &str) -> (&'static str, &str) {
    if text.contains(['T', 't', ':', '.']) {
        ("time", text)
    } else {
        ("at", text)
    }
}

/// A client of one master's audit API.
#[derive(Clone)]
pub struct AuditClient {
    http: reqwest::Client,
    master: String,
}

impl AuditClient {
    pub fn new(http: reqwest::Client, master: &str) -> AuditClient {
        AuditClient { http, master: master.to_owned() }
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, Error> {
        let url = format!("http://{}{path}", self.master);
        let response = self
            .http
            .get(&url)
            .query(query)
            .send()
            .await
            .map_err(|source| Error::Unreachable { url: url.clone(), source })?;
        if !response.status().is_success() {
            return Err(Error::from_response(&url, response).await);
        }
        response.json().await.map_err(|error| Error::Protocol {
            url,
            problem: format!("the answer is not JSON: {error}"),
        })
    }

    /// Every command that touched `kind`=`id` (kind: task, agent, framework, app, role,
    /// operator), oldest first.
    pub async fn history(
        &self,
        kind: &str,
        id: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Value, Error> {
        let mut query = vec![(kind, id)];
        query.extend(from.map(|from| ("from", from)));
        query.extend(to.map(|to| ("to", to)));
        self.get("/corral/v1/history", &query).await
    }

    /// The state at `point` (see [`point_parameter`]) in the v0 shape, or `GET_STATE`'s
    /// with `format` `v1`.
    pub async fn state(&self, point: Option<&str>, format: Option<&str>) -> Result<Value, Error> {
        let mut query = Vec::new();
        query.extend(point.map(point_parameter));
        query.extend(format.map(|format| ("format", format)));
        self.get("/corral/v1/state", &query).await
    }

    pub async fn diff(&self, from: &str, to: &str) -> Result<Value, Error> {
        self.get("/corral/v1/diff", &[("from", from), ("to", to)]).await
    }

    /// Why a task is where it is: `/corral/v1/explain/task/{id}`.
    pub async fn explain_task(&self, task_id: &str) -> Result<Value, Error> {
        self.get(&format!("/corral/v1/explain/task/{}", encode_path(task_id)), &[]).await
    }

    /// A deployment's plan and refusals: `/corral/v1/explain/deployment/{id}`.
    pub async fn explain_deployment(&self, deployment_id: &str) -> Result<Value, Error> {
        self.get(&format!("/corral/v1/explain/deployment/{}", encode_path(deployment_id)), &[])
            .await
    }
}

/// Percent-encodes what may not stand in one path segment.
fn encode_path(segment: &str) -> String {
    segment
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
