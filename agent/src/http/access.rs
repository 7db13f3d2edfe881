//! Access control on the agent's own API, decided by the masters.
//!
//! The agent keeps no ACLs: when the cluster's mode is `permissive` or `enforce` it asks a
//! master (`POST /corral/v1/acl/authorize`, with its own join token) whether a caller may
//! use a route, forwarding the caller's `Authorization` and `X-Corral-Token` headers as they
//! came, and answers as a master would: 401 with `WWW-Authenticate: Basic realm="corral"`
//! or 403, with the master's JSON error body. What each route needs, as Mesos's agent
//! (`--authenticate_http_readonly`, `access_sandboxes`, `view_*`):
//!
//! - `/health`, `/version`: open (liveness probes); `/metrics` (Prometheus): open, as on
//!   the masters (scrapers carry no token);
//! - `/metrics/snapshot`: a live identity (Mesos authenticates it as a read-only endpoint);
//! - `/state`, `/monitor/statistics`: `view_tasks` (they list every task the agent runs);
//! - `/files/*`: `access_sandboxes`.
//!
//! A master's own call (the autoscaler's usage reads) carries `Corral-Cluster-Auth`, signed
//! with the cluster secret, which the master checks. Verdicts are kept [`VERDICT_TTL`], keyed
//! by a blake3 hash of the credentials and the action (at most [`CACHE_LIMIT`] of them), and
//! the mode as long, so with `off` a request costs a master round trip once per
//! [`VERDICT_TTL`], not once per request. A master that cannot be asked is a 503 (logged),
//! never an open door.

use std::collections::HashMap;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{AgentApi, ApiError};

/// How long a verdict (and the mode) is taken as the masters' word: a revoked token is
/// refused at most this long after.
pub const VERDICT_TTL: Duration = Duration::from_secs(5);

/// Verdicts kept at most; past it the cache starts over (it holds the callers in use).
pub const CACHE_LIMIT: usize = 4096;

/// The header a master's own calls carry (`corral_log::network::CLUSTER_AUTH_HEADER`).
const CLUSTER_AUTH_HEADER: &str = "corral-cluster-auth";

/// What a route needs from its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    Nothing,
    /// A live identity, no particular action.
    Identity,
    /// An ACL action, with no object (the route does not know the sandbox's user).
    Action(&'static str),
}

fn need(route: &str) -> Need {
    match route {
        "/metrics/snapshot" => Need::Identity,
        "/state" | "/state.json" | "/monitor/statistics" | "/monitor/statistics.json" => {
            Need::Action("view_tasks")
        }
        _ if route.starts_with("/files/") => Need::Action("access_sandboxes"),
        _ => Need::Nothing,
    }
}

/// The masters' answer for one caller and action.
#[derive(Clone, Debug, PartialEq)]
enum Decision {
    Allow,
    Refuse { status: StatusCode, body: Value },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Off,
    /// `permissive` or `enforce`: the masters decide (and say allow under `permissive`).
    On,
}

/// Recent verdicts and the mode, with when they were heard. Pure: times are arguments.
#[derive(Default)]
pub(crate) struct Verdicts {
    mode: Option<(Mode, Instant)>,
    decisions: HashMap<[u8; 32], (Decision, Instant)>,
}

impl Verdicts {
    fn mode(&self, now: Instant) -> Option<Mode> {
        self.mode.filter(|(_, at)| now.duration_since(*at) < VERDICT_TTL).map(|(mode, _)| mode)
    }

    fn decision(&self, key: &[u8; 32], now: Instant) -> Option<Decision> {
        let (decision, at) = self.decisions.get(key)?;
        (now.duration_since(*at) < VERDICT_TTL).then(|| decision.clone())
    }

    fn record(&mut self, mode: Mode, key: Option<[u8; 32]>, decision: &Decision, now: Instant) {
        self.mode = Some((mode, now));
        let Some(key) = key else { return };
        if self.decisions.len() >= CACHE_LIMIT {
            self.decisions.retain(|_, (_, at)| now.duration_since(*at) < VERDICT_TTL);
            if self.decisions.len() >= CACHE_LIMIT {
                self.decisions.clear();
            }
        }
        self.decisions.insert(key, (decision.clone(), now));
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The cache key: the credentials as presented and what they are asked for.
fn key(headers: &HeaderMap, need: Need) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    for name in [header::AUTHORIZATION.as_str(), "x-corral-token"] {
        let value = headers.get(name).map_or(&[][..], HeaderValue::as_bytes);
        hasher.update(&u64::try_from(value.len()).unwrap_or(u64::MAX).to_le_bytes());
        hasher.update(value);
    }
    hasher.update(match need {
        Need::Nothing => b"-".as_slice(),
        Need::Identity => b"identity".as_slice(),
        Need::Action(action) => action.as_bytes(),
    });
    *hasher.finalize().as_bytes()
}

/// The middleware: lets a request through, or answers it as the masters decided.
pub(crate) async fn guard(
    State(api): State<AgentApi>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    // An unmatched path gets the router's 404, which shows nothing.
    let Some(matched) = matched else { return next.run(request).await };
    let route = matched.as_str().to_owned();
    let need = need(&route);
    if need == Need::Nothing {
        return next.run(request).await;
    }
    // Copies: the request (its body is not `Sync`) must not be held across the master's
    // answer.
    let asked = Asked {
        headers: request.headers().clone(),
        method: request.method().as_str().to_owned(),
        path: request.uri().path().to_owned(),
    };
    match decide(&api, need, &asked).await {
        Ok(Decision::Allow) => next.run(request).await,
        Ok(Decision::Refuse { status, body }) => {
            let mut response = (status, Json(body)).into_response();
            if status == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"corral\""),
                );
            }
            response
        }
        Err(cause) => {
            tracing::warn!(%route, %cause, "refused a request: no master could say whether its caller may use this route");
            ApiError::Unavailable(format!(
                "access to {route} could not be checked with a master; this agent's log has the cause"
            ))
            .into_response()
        }
    }
}

/// What the agent asks the masters about: a request's credentials and target.
struct Asked {
    headers: HeaderMap,
    method: String,
    path: String,
}

async fn decide(api: &AgentApi, need: Need, asked: &Asked) -> Result<Decision, String> {
    let headers = &asked.headers;
    let proof = header_text(headers, CLUSTER_AUTH_HEADER);
    // A master's proof is dated: each one is a new question, never cached.
    let key = proof.is_none().then(|| key(headers, need));
    {
        let verdicts = api.inner.verdicts.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if verdicts.mode(now) == Some(Mode::Off) {
            return Ok(Decision::Allow);
        }
        if let Some(decision) = key.as_ref().and_then(|key| verdicts.decision(key, now)) {
            return Ok(decision);
        }
    }
    let mut question = json!({
        "agent_id": api.agent_id().map(ToString::to_string).unwrap_or_default(),
        "action": match need {
            Need::Action(action) => Some(action),
            Need::Identity | Need::Nothing => None,
        },
        "credentials": {
            "authorization": header_text(headers, header::AUTHORIZATION.as_str()),
            "x_corral_token": header_text(headers, "x-corral-token"),
        },
    });
    if let Some(proof) = proof {
        question["master_proof"] = json!({
            "method": asked.method,
            "path": asked.path,
            "header": proof,
        });
    }
    let answer = api.inner.masters.authorize(&question).await?;
    let (mode, decision) = read_answer(&answer)?;
    let mut verdicts = api.inner.verdicts.lock().unwrap_or_else(PoisonError::into_inner);
    verdicts.record(mode, key, &decision, Instant::now());
    Ok(decision)
}

/// The master's answer (`routes/authorize.rs` in the master): the mode and the verdict.
fn read_answer(answer: &Value) -> Result<(Mode, Decision), String> {
    let mode = match answer["mode"].as_str() {
        Some("off") => return Ok((Mode::Off, Decision::Allow)),
        Some("permissive") => {
            return Ok((Mode::On, Decision::Allow));
        }
        Some("enforce") => Mode::On,
        _ => return Err(format!("a master's answer names no known mode: {answer}")),
    };
    match answer["verdict"].as_str() {
        Some("allow") => Ok((mode, Decision::Allow)),
        Some("deny" | "unauthenticated") => {
            let refusal = &answer["refusal"];
            let status = refusal["status"]
                .as_u64()
                .and_then(|status| u16::try_from(status).ok())
                .and_then(|status| StatusCode::from_u16(status).ok())
                .filter(StatusCode::is_client_error)
                .ok_or_else(|| format!("a master's refusal has no 4xx status: {answer}"))?;
            Ok((mode, Decision::Refuse { status, body: refusal["body"].clone() }))
        }
        _ => Err(format!("a master's answer names no known verdict: {answer}")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use axum::http::{HeaderMap, HeaderValue, StatusCode};
    use serde_json::json;

    use super::{key, need, read_answer, Decision, Mode, Need, Verdicts, CACHE_LIMIT, VERDICT_TTL};

    #[test]
    fn routes_need_what_mesos_agents_ask_for() {
        assert_eq!(need("/health"), Need::Nothing);
        assert_eq!(need("/version"), Need::Nothing);
        assert_eq!(need("/metrics"), Need::Nothing);
        assert_eq!(need("/metrics/snapshot"), Need::Identity);
        assert_eq!(need("/state"), Need::Action("view_tasks"));
        assert_eq!(need("/monitor/statistics.json"), Need::Action("view_tasks"));
        assert_eq!(need("/files/read"), Need::Action("access_sandboxes"));
        assert_eq!(need("/files/download.json"), Need::Action("access_sandboxes"));
    }

    #[test]
    fn verdicts_last_their_lifetime_and_the_cache_stays_bounded() {
        let start = Instant::now();
        let mut verdicts = Verdicts::default();
        let mut headers = HeaderMap::new();
        headers.insert("x-corral-token", HeaderValue::from_static("crl_a_b"));
        let reader = key(&headers, Need::Action("view_tasks"));
        assert_ne!(reader, key(&headers, Need::Action("access_sandboxes")));
        assert_ne!(reader, key(&HeaderMap::new(), Need::Action("view_tasks")));
        verdicts.record(Mode::On, Some(reader), &Decision::Allow, start);
        assert_eq!(verdicts.decision(&reader, start + VERDICT_TTL / 2), Some(Decision::Allow));
        assert_eq!(verdicts.decision(&reader, start + VERDICT_TTL), None);
        assert_eq!(verdicts.mode(start + VERDICT_TTL), None);
        for number in 0..CACHE_LIMIT * 2 {
            let mut key = [0u8; 32];
            let number = u64::try_from(number).expect("a small number");
            key[..8].copy_from_slice(&number.to_le_bytes());
            verdicts.record(
                Mode::On,
                Some(key),
                &Decision::Allow,
                start + Duration::from_millis(1),
            );
        }
        assert!(verdicts.decisions.len() <= CACHE_LIMIT);
    }

    #[test]
    fn the_masters_answers_are_read_as_they_are_written() {
        assert_eq!(
            read_answer(&json!({"mode": "off", "verdict": "allow"})),
            Ok((Mode::Off, Decision::Allow))
        );
        let refused = json!({"mode": "permissive", "verdict": "deny", "refusal": {"status": 403, "body": {}}});
        assert_eq!(read_answer(&refused), Ok((Mode::On, Decision::Allow)));
        let body = json!({"error": "forbidden", "message": "no"});
        let refused =
            json!({"mode": "enforce", "verdict": "deny", "refusal": {"status": 403, "body": body}});
        assert_eq!(
            read_answer(&refused),
            Ok((Mode::On, Decision::Refuse { status: StatusCode::FORBIDDEN, body }))
        );
        assert!(read_answer(
            &json!({"mode": "enforce", "verdict": "deny", "refusal": {"status": 200}})
        )
        .is_err());
        assert!(read_answer(&json!({"mode": "?"})).is_err());
    }
}
