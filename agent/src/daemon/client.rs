//! The agent's side of the agent-facing API: commands to whichever master leads, and the
//! agent's own event stream from any master.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use corral_state::{AgentId, Command, Cursor, Outcome, Rejection};
use futures::stream::{FuturesUnordered, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// An event stream silent this long belongs to a master that paused or lost its network:
/// masters send a heartbeat line every half second (the master's `AGENT_STREAM_HEARTBEAT`).
const STREAM_SILENCE: Duration = Duration::from_secs(2);

/// What the log made of a command.
#[derive(Debug)]
pub enum CommandReply {
    /// Committed (or a duplicate of a committed one): the outcome as the state saw it.
    Committed(Outcome),
    /// The state rejected it; retrying the same request id gives the same answer.
    Rejected(Rejection),
}

#[derive(Deserialize)]
struct CommandResult {
    outcome: Outcome,
}

/// Which master serves an agent event stream, and why that one.
#[derive(Clone, Copy, Debug)]
pub struct StreamSource {
    master: usize,
    placement: Placement,
}

/// Why the stream is on the master it is on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Placement {
    /// The first choice: not the leader as far as the agent knew.
    Chosen,
    /// Every other master failed it; moving away would only come back here.
    LastResort,
}

/// Why the event stream could not be opened.
#[derive(Debug)]
pub enum StreamRefused {
    /// The journal no longer holds the cursor; this is the oldest it has.
    Gone { oldest: Cursor },
}

pub struct MasterClient {
    /// `https` with mutual TLS, else `http`.
    scheme: &'static str,
    http: reqwest::Client,
    streaming: reqwest::Client,
    masters: Vec<String>,
    /// The master tried first: the last one that answered, or the one after a leader whose
    /// stream went quiet.
    preferred: AtomicUsize,
    /// Whether any master has answered yet.
    answered: AtomicBool,
    /// The master believed to lead, from redirects, answers and stream heartbeats.
    leader: Mutex<Option<usize>>,
    /// Bumped when the leader changes or the event stream is lost: a command waiting on a
    /// master that paused or was cut off is sent again, to the new leader, at once.
    news: watch::Sender<u64>,
}

impl MasterClient {
    /// Fails only when the HTTP client cannot be built (no TLS backend, say).
    pub fn new(
        masters: Vec<String>,
        tls: Option<&corral_tls::Tls>,
        token: Option<&super::AgentToken>,
    ) -> Result<MasterClient, reqwest::Error> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            headers.insert(reqwest::header::AUTHORIZATION, token.authorization());
        }
        let secured = |builder: reqwest::ClientBuilder| {
            let builder = builder.default_headers(headers.clone());
            match tls {
                Some(tls) => tls.client(corral_tls::Role::Master, builder),
                None => builder,
            }
        };
        // A command commits in milliseconds; one unanswered for seconds went to a master that
        // is paused or cut off, and is sent to the next (its request id makes that safe).
        let http = secured(
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(1))
                .timeout(Duration::from_secs(3)),
        )
        .build()?;
        // No overall timeout: the stream lives as long as the master serves it; its heartbeat
        // lines every half second let the read timeout notice a master gone quiet.
        let streaming = secured(
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(1))
                .read_timeout(STREAM_SILENCE),
        )
        .build()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        Ok(MasterClient {
            scheme,
            http,
            streaming,
            masters,
            preferred: AtomicUsize::new(0),
            answered: AtomicBool::new(false),
            leader: Mutex::new(None),
            news: watch::Sender::new(0),
        })
    }

    fn known_leader(&self) -> Option<usize> {
        *self.leader.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_leader(&self, leader: Option<usize>) {
        let mut known = self.leader.lock().unwrap_or_else(PoisonError::into_inner);
        if *known != leader {
            *known = leader;
            drop(known);
            self.news.send_modify(|news| *news += 1);
        }
    }

    /// A master (a redirect, a stream heartbeat) says who leads; a leader not among
    /// `masters` (an address this agent was not given) is ignored.
    pub fn heard_leader(&self, address: &str) {
        if let Some(index) = self.masters.iter().position(|master| master == address) {
            self.set_leader(Some(index));
        }
    }

    /// The event stream broke: whatever this agent believed of the cluster may be stale. A
    /// leader whose stream went quiet has paused or lost its network, so commands go elsewhere
    /// until someone names the leader again.
    pub fn stream_lost(&self, source: StreamSource) {
        let mut known = self.leader.lock().unwrap_or_else(PoisonError::into_inner);
        if *known == Some(source.master) {
            *known = None;
            self.preferred.store(source.master + 1, Ordering::Relaxed);
        }
        drop(known);
        self.news.send_modify(|news| *news += 1);
    }

    /// Whether the stream should move to a follower: its master was named the leader (it
    /// won an election, or no leader was known when it opened). A paused or cut-off leader
    /// stops its stream too, and the agent would only learn of the new leader at the read
    /// timeout; a follower's stream goes on and names the new leader at once.
    pub fn streaming_from_leader(&self, source: StreamSource) -> bool {
        self.masters.len() > 1
            && source.placement == Placement::Chosen
            && self.known_leader() == Some(source.master)
    }

    pub fn masters(&self) -> &[String] {
        &self.masters
    }

    /// The master that answered last; `None` until one has.
    pub fn current_master(&self) -> Option<&str> {
        if !self.answered.load(Ordering::Relaxed) {
            return None;
        }
        let index = self.preferred.load(Ordering::Relaxed) % self.masters.len();
        Some(&self.masters[index])
    }

    fn note_answer(&self, master_index: usize) {
        self.preferred.store(master_index, Ordering::Relaxed);
        self.answered.store(true, Ordering::Relaxed);
    }

    /// Sends the command until the log decides on it: through redirects, elections and
    /// masters that are down. Safe to retry because the request id de-duplicates.
    pub async fn send(
        &self,
        request_id: &str,
        agent_id: Option<&AgentId>,
        command: &Command,
    ) -> CommandReply {
        let body = json!({"request_id": request_id, "agent_id": agent_id, "command": command});
        let mut backoff = Duration::from_millis(50);
        let mut attempt = self.preferred.load(Ordering::Relaxed);
        let mut refusal_told = false;
        let mut news = self.news.subscribe();
        'masters: loop {
            let master_index = match self.known_leader() {
                Some(leader) => leader,
                None => {
                    attempt += 1;
                    (attempt - 1) % self.masters.len()
                }
            };
            let mut answering = master_index;
            let mut url = format!(
                "{}://{}/corral/v1/agent/commands",
                self.scheme, self.masters[master_index]
            );
            news.mark_unchanged();
            for _ in 0..3 {
                let sent = tokio::select! {
                    sent = self.http.post(&url).json(&body).send() => sent,
                    // The leader changed while this waited (on a master that paused, say):
                    // the request id makes sending it again to the new one safe.
                    _ = news.changed() => continue 'masters,
                };
                let response = match sent {
                    Ok(response) => response,
                    Err(error) => {
                        tracing::debug!(%url, %error, "master unreachable");
                        break;
                    }
                };
                let status = response.status();
                if status == reqwest::StatusCode::TEMPORARY_REDIRECT {
                    let Some(location) =
                        response.headers().get("location").and_then(|l| l.to_str().ok())
                    else {
                        break;
                    };
                    url = location.to_owned();
                    if let Some(index) = self.index_in(&url) {
                        answering = index;
                        self.set_leader(Some(index));
                        news.mark_unchanged();
                    }
                    continue;
                }
                if status.is_success() || status == reqwest::StatusCode::CONFLICT {
                    let result = match response.json::<CommandResult>().await {
                        Ok(result) => result,
                        Err(error) => {
                            tracing::warn!(%url, %error, "unreadable answer to an agent command");
                            break;
                        }
                    };
                    self.note_answer(master_index);
                    self.set_leader(Some(answering));
                    return match result.outcome {
                        Outcome::Rejected(rejection) => CommandReply::Rejected(rejection),
                        Outcome::Duplicate(first) => match *first {
                            Outcome::Rejected(rejection) => CommandReply::Rejected(rejection),
                            other => CommandReply::Committed(other),
                        },
                        accepted => CommandReply::Committed(accepted),
                    };
                }
                if status == reqwest::StatusCode::UNAUTHORIZED
                    || status == reqwest::StatusCode::FORBIDDEN
                {
                    // Retried, as the ACLs may change, but said once: an operator starting
                    // an agent without its token must see why it never registers.
                    if !refusal_told {
                        let text = response
                            .text()
                            .await
                            .unwrap_or_else(|error| format!("(unreadable: {error})"));
                        tracing::error!(%url, %status, %text, "a master refused this agent's credentials (see --token-file)");
                        refusal_told = true;
                    }
                    break;
                }
                if status == reqwest::StatusCode::BAD_REQUEST {
                    // A malformed command stays malformed: a bug, but never worth a hot loop.
                    let text = response
                        .text()
                        .await
                        .unwrap_or_else(|error| format!("(unreadable: {error})"));
                    tracing::error!(%url, %text, "master refused an agent command as malformed");
                }
                break;
            }
            // That master did not take it (down, adrift, no leader yet): forget it as the
            // leader, so the next attempt tries the others.
            if self.known_leader() == Some(answering) {
                *self.leader.lock().unwrap_or_else(PoisonError::into_inner) = None;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Asks the masters, one after another from the one that answered last, whether a
    /// caller may use this agent's API (`POST /corral/v1/acl/authorize`; any master answers,
    /// from the log it has applied). `Err` names why none did.
    pub async fn authorize(
        &self,
        question: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let first = self.preferred.load(Ordering::Relaxed);
        let mut causes = Vec::new();
        for offset in 0..self.masters.len() {
            let index = (first + offset) % self.masters.len();
            let url = format!("{}://{}/corral/v1/acl/authorize", self.scheme, self.masters[index]);
            let response = match self.http.post(&url).json(question).send().await {
                Ok(response) => response,
                Err(error) => {
                    causes.push(format!("{url}: {error}"));
                    continue;
                }
            };
            let status = response.status();
            if !status.is_success() {
                let text =
                    response.text().await.unwrap_or_else(|error| format!("(unreadable: {error})"));
                causes.push(format!("{url}: {status} {text}"));
                continue;
            }
            match response.json().await {
                Ok(answer) => {
                    self.note_answer(index);
                    return Ok(answer);
                }
                Err(error) => causes.push(format!("{url}: unreadable answer: {error}")),
            }
        }
        Err(causes.join("; "))
    }

    /// Which of `masters` a URL (a redirect's location) points at.
    fn index_in(&self, url: &str) -> Option<usize> {
        let authority = url.split_once("://")?.1.split('/').next()?;
        self.masters.iter().position(|master| master == authority)
    }

    /// Opens the agent's event stream after `from` on the first master that serves it.
    ///
    /// A follower first: its stream goes on while the leader pauses, dies or is cut off (and
    /// names the new leader at once), and the leader is spared the work. Every follower is
    /// asked at once and the first to answer serves: a paused master accepts the connection
    /// and never answers, and asking in turn would wait out the read timeout on it. Once
    /// every follower failed, the leader.
    pub async fn open_events(
        &self,
        agent_id: &AgentId,
        from: Cursor,
    ) -> Result<(reqwest::Response, StreamSource), StreamRefused> {
        let mut backoff = Duration::from_millis(50);
        loop {
            let leader = self.known_leader().filter(|_| self.masters.len() > 1);
            let followers = (0..self.masters.len()).filter(|index| Some(*index) != leader);
            let mut asked: FuturesUnordered<_> =
                followers.map(|index| self.ask_for_stream(index, agent_id, from)).collect();
            while let Some((master, attempt)) = asked.next().await {
                match attempt {
                    StreamAttempt::Opened(response) => {
                        let source = StreamSource { master, placement: Placement::Chosen };
                        return Ok((response, source));
                    }
                    StreamAttempt::Gone(oldest) => return Err(StreamRefused::Gone { oldest }),
                    StreamAttempt::Failed => {}
                }
            }
            drop(asked);
            if let Some(leader) = leader {
                match self.ask_for_stream(leader, agent_id, from).await.1 {
                    StreamAttempt::Opened(response) => {
                        let source =
                            StreamSource { master: leader, placement: Placement::LastResort };
                        return Ok((response, source));
                    }
                    StreamAttempt::Gone(oldest) => return Err(StreamRefused::Gone { oldest }),
                    StreamAttempt::Failed => {}
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn ask_for_stream(
        &self,
        master: usize,
        agent_id: &AgentId,
        from: Cursor,
    ) -> (usize, StreamAttempt) {
        let address = &self.masters[master];
        let url =
            format!("{}://{address}/corral/v1/agent/{agent_id}/events?from={from}", self.scheme);
        let attempt = match self.streaming.get(&url).send().await {
            Ok(response) if response.status().is_success() => StreamAttempt::Opened(response),
            Ok(response) if response.status() == reqwest::StatusCode::GONE => {
                match response.json::<serde_json::Value>().await {
                    Ok(body) => match body["oldest"].as_str().and_then(|c| c.parse().ok()) {
                        Some(oldest) => StreamAttempt::Gone(oldest),
                        None => {
                            tracing::warn!(%url, %body, "a 410 without the oldest cursor");
                            StreamAttempt::Failed
                        }
                    },
                    Err(error) => {
                        tracing::warn!(%url, %error, "an unreadable 410");
                        StreamAttempt::Failed
                    }
                }
            }
            Ok(response) => {
                tracing::debug!(%url, status = %response.status(), "no stream");
                StreamAttempt::Failed
            }
            Err(error) => {
                tracing::debug!(%url, %error, "master unreachable");
                StreamAttempt::Failed
            }
        };
        (master, attempt)
    }
}

/// One master's answer to a request for the agent's event stream.
enum StreamAttempt {
    Opened(reqwest::Response),
    /// The journal no longer holds the cursor; this is the oldest it has.
    Gone(Cursor),
    Failed,
}
