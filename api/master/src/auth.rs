//! Who is asking, and may they: the authentication layer and the API's early authorization.
//!
//! Credentials are read from `Authorization: Bearer crl_<accessor>_<secret>`, Marathon's
//! `Authorization: token=crl_…`, `X-Corral-Token: crl_…`, or HTTP Basic (a Mesos
//! credential's principal and secret, or a token's accessor and secret). A token's secret is
//! checked against its blake3 hash in constant time; a Basic secret against its argon2 hash,
//! through a cache keyed by a hash of the pair, so pymesos's header on every call costs one
//! KDF run, not one per call.
//!
//! With the mode `off` nothing is asked. With `enforce`, every route but the public ones
//! (`/health`, `/version`, `/ping`, `/metrics`, `/corral/v1/acl/bootstrap`, `/corral/v1/auth`
//! and the web UI's page and assets) needs a live
//! identity (401 with `WWW-Authenticate: Basic realm="corral"` otherwise); native reads need
//! `read_api` on their scope, Marathon reads of one app `view_apps` on its id (403 when
//! refused). Writes are checked where they are proposed (`Master::propose`): the API asks the
//! state it has (`ClusterState::check_client_command`) to answer early, then proposes the
//! command signed with the identity (`Actor::Client`), and `apply` decides again at the
//! command's log position. With `permissive`, the same decisions are made and counted in
//! `corral_http_auth_denied_total{reason,route}` but nothing is refused.
//!
//! The caller travels from the middleware to `propose` in a task-local, so the handlers in
//! between need not carry it; work spawned off the request (stream pumps, leader loops) has
//! no caller and proposes as the master itself.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use corral_log::ReadConsistency;
use corral_state::auth::{Action, AuthMode, Denial, DenialReason};
use corral_state::{AgentId, ClusterState, Rejection};

use crate::error::ApiError;
use crate::master::Master;

/// Where an agent asks whether its own API may answer a caller (`routes::acl`).
pub(crate) const AUTHORIZE_ROUTE: &str = "/corral/v1/acl/authorize";

/// The token form: a fixed prefix, the public accessor id, the secret.
pub const TOKEN_PREFIX: &str = "crl_";

tokio::task_local! {
    static CALLER: Caller;
}

/// Who sent the request being served, as the middleware authenticated it.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub(crate) mode: AuthMode,
    /// A token's accessor id or a Basic credential's principal; `None`: anonymous.
    pub(crate) identity: Option<String>,
    /// The name ACL rules match.
    pub(crate) principal: Option<String>,
    pub(crate) route: String,
}

/// The caller of the request this task serves, if it serves one.
pub(crate) fn current_caller() -> Option<Caller> {
    CALLER.try_with(Caller::clone).ok()
}

/// What the request presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Presented {
    Nothing,
    Token { accessor: String, secret: String },
    Basic { user: String, secret: String },
}

/// Why a request's credentials were not taken: the metric's `reason` label (a closed set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Missing,
    Malformed,
    WrongSecret,
    Unknown,
    Denied,
    /// A master's Raft request whose proof is dated too far from this master's clock.
    Stale,
}

impl Refusal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::WrongSecret => "wrong_secret",
            Refusal::Unknown => "unknown",
            Refusal::Denied => "denied",
            Refusal::Stale => "stale",
        }
    }
}

/// Splits `crl_<accessor>_<secret>`.
pub fn parse_token(text: &str) -> Option<(String, String)> {
    let rest = text.trim().strip_prefix(TOKEN_PREFIX)?;
    let (accessor, secret) = rest.split_once('_')?;
    if accessor.is_empty() || secret.is_empty() {
        return None;
    }
    Some((accessor.to_owned(), secret.to_owned()))
}

/// A new token: its accessor id and the whole token text (shown once, never stored).
pub fn new_token() -> (String, String, String) {
    let accessor = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let text = format!("{TOKEN_PREFIX}{accessor}_{secret}");
    (accessor, secret, text)
}

/// Reads the credentials a request carries; `Err` when they are there but unreadable.
pub(crate) fn presented(headers: &HeaderMap) -> Result<Presented, &'static str> {
    if let Some(value) = headers.get("x-corral-token") {
        let text = value.to_str().map_err(|_| "X-Corral-Token is not text")?;
        let (accessor, secret) = parse_token(text).ok_or("X-Corral-Token is not a Corral token")?;
        return Ok(Presented::Token { accessor, secret });
    }
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(Presented::Nothing);
    };
    let text = value.to_str().map_err(|_| "Authorization is not text")?.trim();
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        let (accessor, secret) =
            parse_token(rest).ok_or("the bearer token is not a Corral token")?;
        return Ok(Presented::Token { accessor, secret });
    }
    if let Some(token) = text.strip_prefix("token=") {
        let (accessor, secret) = parse_token(token).ok_or("token= is not a Corral token")?;
        return Ok(Presented::Token { accessor, secret });
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| "Basic credentials are not base64")?;
        let decoded = String::from_utf8(decoded).map_err(|_| "Basic credentials are not UTF-8")?;
        let (user, secret) = decoded.split_once(':').ok_or("Basic credentials have no ':'")?;
        return Ok(Presented::Basic { user: user.to_owned(), secret: secret.to_owned() });
    }
    Err("Authorization is neither Bearer, token= nor Basic")
}

/// Verified Basic pairs: blake3(principal ‖ 0 ‖ secret) → the PHC string it verified
/// against. A changed credential has another PHC string, so a stale entry never matches.
#[derive(Default)]
pub struct BasicCache {
    verified: Mutex<HashMap<[u8; 32], String>>,
}

/// Past this many entries the cache starts over: it holds what clients in use present.
const BASIC_CACHE_LIMIT: usize = 4096;

impl BasicCache {
    fn key(user: &str, secret: &str) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(user.as_bytes());
        hasher.update(&[0]);
        hasher.update(secret.as_bytes());
        *hasher.finalize().as_bytes()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], String>> {
        self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn verify(&self, user: &str, secret: &str, phc: &str) -> bool {
        let key = BasicCache::key(user, secret);
        if self.lock().get(&key).is_some_and(|known| known == phc) {
            return true;
        }
        let (secret_owned, phc_owned) = (secret.to_owned(), phc.to_owned());
        let verified =
            tokio::task::spawn_blocking(move || verify_password(&secret_owned, &phc_owned))
                .await
                .expect("verifying a password does not panic");
        if verified {
            let mut cache = self.lock();
            if cache.len() >= BASIC_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key, phc.to_owned());
        }
        verified
    }
}

/// argon2id with the crate's defaults and a random salt, in PHC form.
pub fn hash_password(secret: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|error| error.to_string())?;
    argon2::Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| error.to_string())
}

fn verify_password(secret: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc).is_ok_and(|hash| {
        argon2::Argon2::default().verify_password(secret.as_bytes(), &hash).is_ok()
    })
}

/// Routes anyone may call: liveness, the bootstrap, the auth mode (a 401 says as much), and
/// the web UI's page and assets (no cluster data; the page asks for a token itself, where a
/// 401 on the page would make the browser ask for a Basic password).
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/health"
            | "/version"
            | "/ping"
            | "/metrics"
            | "/corral/v1/acl/bootstrap"
            | "/corral/v1/auth"
            | "/"
            | "/favicon.ico"
            | "/ui"
            | "/ui/"
            | "/ui/assets/{name}"
            | "/ui/{*rest}"
            | "unmatched"
    )
}

/// What a request needs beyond a live identity, for what no command carries to `apply`:
/// reads (a native scope, one app's view, flags, maintenance, an agent's sandbox through the
/// proxy) and the writes that change Raft's membership rather than the state. An object of
/// `None` is one only an `ANY` rule covers (Mesos's flags and machines, or a sandbox whose
/// user the proxy does not know).
fn route_action(method: &Method, route: &str, path: &str) -> Option<(Action, Option<String>)> {
    let scope = |action: Action, scope: &str| Some((action, Some(scope.to_owned())));
    if method != Method::GET && method != Method::HEAD {
        if route.starts_with("/corral/v1/members") || route == "/corral/v1/leader/transfer" {
            return scope(Action::WriteApi, "members");
        }
        return None;
    }
    let v0 = route.strip_prefix("/master").unwrap_or(route).trim_end_matches('/');
    match v0 {
        "/flags" => return Some((Action::ViewFlags, None)),
        "/maintenance/schedule" => return Some((Action::GetMaintenanceSchedules, None)),
        "/maintenance/status" => return Some((Action::GetMaintenanceStatuses, None)),
        _ => {}
    }
    if route == "/agent/{agent_id}/{*rest}" || route == "/slave/{agent_id}/{*rest}" {
        // The agent's files are its tasks' sandboxes; the rest (its state, its tasks'
        // statistics) shows every task it runs.
        let rest = path.splitn(4, '/').nth(3).unwrap_or("");
        if rest.starts_with("files/") {
            return Some((Action::AccessSandboxes, None));
        }
        return Some((Action::ViewTasks, None));
    }
    let read = |scope_name: &str| scope(Action::ReadApi, scope_name);
    if route.starts_with("/corral/v1/acl") {
        return read("acl");
    }
    if route.starts_with("/corral/v1/events") || route.starts_with("/corral/v1/agent/") {
        return read("events");
    }
    if ["/corral/v1/history", "/corral/v1/state", "/corral/v1/diff", "/corral/v1/commands"]
        .iter()
        .any(|prefix| route.starts_with(prefix))
    {
        return read("history");
    }
    if route.starts_with("/corral/v1/explain") || route.starts_with("/corral/v1/allocation") {
        return read("explain");
    }
    if route.starts_with("/corral/v1/settings") {
        return read("settings");
    }
    if route.starts_with("/corral/v1/snapshot") {
        return read("snapshot");
    }
    if route.starts_with("/corral/v1/") {
        return read("cluster");
    }
    if route.starts_with("/v2/apps/") {
        let app_id = path.strip_prefix("/v2/apps")?;
        let app_id = app_id.split_once("/tasks").map_or(app_id, |(id, _)| id);
        let app_id = app_id.split_once("/versions").map_or(app_id, |(id, _)| id);
        // As the routes read it: the `marathon` client asks for `/v2/apps//dev/web`.
        return Some((Action::ViewApps, Some(format!("/{}", app_id.trim_matches('/')))));
    }
    None
}

/// The `view_*` actions of everything a state holds.
const WHOLE_VIEW: [Action; 5] = [
    Action::ViewFrameworks,
    Action::ViewTasks,
    Action::ViewExecutors,
    Action::ViewRoles,
    Action::ViewApps,
];

/// What a route needs besides `route_action`, for any object: the audit trail and the
/// explanations name whatever the cluster held and carry each command whole, so they cannot
/// be filtered as a state is; every `view_*` rule must allow any object (an `ANY` rule). A
/// past state (`/corral/v1/state`) is filtered instead (`Master::visible_past`).
fn route_views(route: &str) -> &'static [Action] {
    let trail = ["/corral/v1/history", "/corral/v1/diff", "/corral/v1/commands"];
    if trail.contains(&route)
        || route.starts_with("/corral/v1/explain/")
        || route == "/corral/v1/allocation/explain"
    {
        return &WHOLE_VIEW;
    }
    &[]
}

/// The agent whose own event stream `path` is, on that route.
fn agent_of_stream(route: &str, path: &str) -> Option<AgentId> {
    if route != "/corral/v1/agent/{agent_id}/events" {
        return None;
    }
    let id = path.strip_prefix("/corral/v1/agent/")?.strip_suffix("/events")?;
    Some(AgentId::new(id))
}

enum Checked {
    Through(Option<String>, Option<String>),
    Refused(Refusal, Box<Denial>),
}

/// A known identity, the read decision for it, and the Basic secret still to be checked
/// against its argon2 hash (outside the state read: the KDF is slow).
struct Known {
    identity: String,
    principal: Option<String>,
    decision: Result<(), Box<Denial>>,
    kdf: Option<(String, String)>,
}

/// Who `presented` is in `state`, and the read decision for them.
fn identify(
    state: &ClusterState,
    presented: Presented,
    read: Option<(Action, Option<String>)>,
    views: &[Action],
    own_stream: Option<AgentId>,
) -> Result<Known, (Refusal, Box<Denial>)> {
    let auth = state.auth();
    let unknown =
        |name: &str| (Refusal::Unknown, anonymous(DenialReason::UnknownIdentity(name.to_owned())));
    let (identity, kdf) = match presented {
        Presented::Nothing => return Err((Refusal::Missing, anonymous(DenialReason::Anonymous))),
        Presented::Token { accessor, secret } => match auth.token(&accessor) {
            None => return Err(unknown(&accessor)),
            Some(token) if !token.secret_hash.verifies(&secret) => {
                return Err((
                    Refusal::WrongSecret,
                    anonymous(DenialReason::UnknownIdentity(accessor)),
                ))
            }
            Some(_) => (accessor, None),
        },
        Presented::Basic { user, secret } => match (auth.token(&user), auth.credential(&user)) {
            (Some(token), _) if token.secret_hash.verifies(&secret) => (user, None),
            (_, Some(credential)) => {
                let phc = credential.phc.clone();
                (user, Some((secret, phc)))
            }
            _ => return Err(unknown(&user)),
        },
    };
    let principal = auth.principal(&identity).map(|p| p.name.to_owned());
    let decision = match &read {
        // An agent reads its own events as the identity that registered it; anyone else
        // needs `read_api` on `events`.
        _ if own_stream.as_ref().and_then(|id| auth.agent_identity(id))
            == Some(identity.as_str()) =>
        {
            Ok(())
        }
        Some((action, object)) => auth.decide(Some(&identity), *action, object.as_deref()),
        None => Ok(()),
    }
    .and_then(|()| views.iter().try_for_each(|view| auth.decide(Some(&identity), *view, None)));
    Ok(Known { identity, principal, decision, kdf })
}

fn anonymous(reason: DenialReason) -> Box<Denial> {
    Box::new(Denial { principal: None, action: "authenticate".to_owned(), object: None, reason })
}

/// The authentication middleware (inside the request metrics, so refusals are counted).
pub(crate) async fn authenticate(
    State(master): State<Master>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let route = matched.map(|m| m.as_str().to_owned()).unwrap_or_else(|| "unmatched".to_owned());
    let read = master
        .read_state(ReadConsistency::Local, |state: &ClusterState| {
            let auth = state.auth();
            (auth.mode(), auth.is_bootstrapped())
        })
        .await;
    let (mode, bootstrapped) = match read {
        Ok(read) => read,
        Err(error) => return error.into_response(),
    };
    // Access control itself is administered only with credentials once it exists, whatever
    // the mode: `apply` refuses anonymous ACL commands, and its reads show who may do what.
    // The agents' question is not administration: it answers `off` to anyone.
    let administered = route.starts_with("/corral/v1/acl/") && route != AUTHORIZE_ROUTE;
    let guarded = mode != AuthMode::Off || (bootstrapped && administered);
    if !guarded || is_public(&route) {
        let caller = Caller { mode, identity: None, principal: None, route };
        return CALLER.scope(caller, next.run(request)).await;
    }
    let checked =
        match check(&master, &route, request.headers(), request.method(), request.uri().path())
            .await
        {
            Ok(checked) => checked,
            Err(error) => return error.into_response(),
        };
    let (identity, principal) = match checked {
        Checked::Through(identity, principal) => (identity, principal),
        Checked::Refused(refusal, denial) => {
            if let Err(refused) = refuse(&master, mode, &route, refusal, denial) {
                return refused.into_response();
            }
            (None, None)
        }
    };
    let caller = Caller { mode, identity, principal, route };
    CALLER.scope(caller, next.run(request)).await
}

/// Decides `action` on `object` for the request being served, where the route alone does
/// not say what is asked (an operator call's type is in its body). Refused as the middleware
/// refuses: counted, and let through when access control is only permissive.
pub(crate) async fn authorize(
    master: &Master,
    action: Action,
    object: Option<&str>,
) -> Result<(), ApiError> {
    let Some(caller) = current_caller().filter(|caller| caller.mode != AuthMode::Off) else {
        return Ok(());
    };
    let (identity, owned) = (caller.identity.clone(), object.map(str::to_owned));
    let decision = master
        .read_state(ReadConsistency::Local, move |state: &ClusterState| {
            state.auth().decide(identity.as_deref(), action, owned.as_deref())
        })
        .await?;
    let Err(denial) = decision else { return Ok(()) };
    refuse(master, caller.mode, &caller.route, Refusal::Denied, denial)
}

/// Counts and logs a refusal; the error to answer with unless access control is only
/// permissive (then the request goes on).
pub(crate) fn refuse(
    master: &Master,
    mode: AuthMode,
    route: &str,
    refusal: Refusal,
    denial: Box<Denial>,
) -> Result<(), ApiError> {
    count_refusal(master, route, refusal);
    tracing::info!(%route, reason = refusal.as_str(), %denial, "request refused by access control");
    if mode == AuthMode::Permissive {
        return Ok(());
    }
    Err(ApiError::Rejected(Rejection::Unauthorized(denial)))
}

/// Counts a request turned away before the log, in
/// `corral_http_auth_denied_total{reason,route}`.
pub(crate) fn count_refusal(master: &Master, route: &str, refusal: Refusal) {
    master.inner.metrics.http_auth_denied.with_label_values(&[refusal.as_str(), route]).inc();
}

/// One state read decides everything but a Basic secret's KDF, which runs after it (cached).
async fn check(
    master: &Master,
    route: &str,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
) -> Result<Checked, ApiError> {
    let read = route_action(method, route, path);
    let own_stream = agent_of_stream(route, path);
    check_presented(master, headers, read, route_views(route), own_stream).await
}

/// What an agent's own API answers a caller with, as this master decides it for the agent
/// (`POST /corral/v1/acl/authorize`): the caller's credentials as they were presented to
/// the agent, and the action the agent's route needs (`None`: a live identity is enough).
pub(crate) enum Verdict {
    Allow {
        principal: Option<String>,
    },
    /// 401 or 403, as the master would answer: the refusal's reason and its error.
    Refuse(Refusal, Box<Denial>),
}

pub(crate) async fn decide_for_agent(
    master: &Master,
    headers: &HeaderMap,
    read: Option<(Action, Option<String>)>,
) -> Result<Verdict, ApiError> {
    Ok(match check_presented(master, headers, read, &[], None).await? {
        Checked::Through(_, principal) => Verdict::Allow { principal },
        Checked::Refused(refusal, denial) => Verdict::Refuse(refusal, denial),
    })
}

async fn check_presented(
    master: &Master,
    headers: &HeaderMap,
    read: Option<(Action, Option<String>)>,
    views: &'static [Action],
    own_stream: Option<AgentId>,
) -> Result<Checked, ApiError> {
    let presented = match presented(headers) {
        Ok(presented) => presented,
        Err(problem) => {
            return Ok(Checked::Refused(
                Refusal::Malformed,
                Box::new(Denial {
                    principal: None,
                    action: "authenticate".to_owned(),
                    object: Some(problem.to_owned()),
                    reason: DenialReason::Anonymous,
                }),
            ))
        }
    };
    let known = {
        let (presented, read, own_stream) = (presented.clone(), read.clone(), own_stream.clone());
        master
            .read_state(ReadConsistency::Local, move |state: &ClusterState| {
                identify(state, presented, read, views, own_stream)
            })
            .await?
    };
    // An identity this master does not know may have been created on the leader a moment
    // ago: catch up with the leader and look again before answering 401.
    let known = match known {
        Err((Refusal::Unknown, denial)) => match crate::read_index::catch_up(master).await {
            Ok(()) => {
                master
                    .read_state(ReadConsistency::Local, move |state: &ClusterState| {
                        identify(state, presented, read, views, own_stream)
                    })
                    .await?
            }
            Err(cause) => {
                tracing::info!(%cause, "an unknown identity is refused without catching up with the leader");
                Err((Refusal::Unknown, denial))
            }
        },
        other => other,
    };
    let Known { identity, principal, decision, kdf } = match known {
        Ok(known) => known,
        Err((refusal, denial)) => return Ok(Checked::Refused(refusal, denial)),
    };
    if let Some((secret, phc)) = kdf {
        if !master.inner.basic_cache.verify(&identity, &secret, &phc).await {
            let denial = anonymous(DenialReason::UnknownIdentity(identity));
            return Ok(Checked::Refused(Refusal::WrongSecret, denial));
        }
    }
    Ok(match decision {
        Ok(()) => Checked::Through(Some(identity), principal),
        Err(denial) => Checked::Refused(Refusal::Denied, denial),
    })
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::{parse_token, presented, Presented};

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).expect("a header value"));
        headers
    }

    #[test]
    fn every_form_of_credentials_is_read() {
        let token = Presented::Token { accessor: "ab12".to_owned(), secret: "s3cr3t".to_owned() };
        assert_eq!(presented(&headers("authorization", "Bearer crl_ab12_s3cr3t")), Ok(token));
        let token = Presented::Token { accessor: "ab12".to_owned(), secret: "s3cr3t".to_owned() };
        assert_eq!(presented(&headers("authorization", "token=crl_ab12_s3cr3t")), Ok(token));
        let token = Presented::Token { accessor: "ab12".to_owned(), secret: "s3cr3t".to_owned() };
        assert_eq!(presented(&headers("x-corral-token", "crl_ab12_s3cr3t")), Ok(token));
        // "marathon:secret"
        assert_eq!(
            presented(&headers("authorization", "Basic bWFyYXRob246c2VjcmV0")),
            Ok(Presented::Basic { user: "marathon".to_owned(), secret: "secret".to_owned() })
        );
        assert_eq!(presented(&HeaderMap::new()), Ok(Presented::Nothing));
        assert_eq!(
            presented(&headers("authorization", "Basic !!!")),
            Err("Basic credentials are not base64")
        );
        assert_eq!(
            presented(&headers("authorization", "Bearer nope")),
            Err("the bearer token is not a Corral token")
        );
        assert_eq!(parse_token("crl__x"), None);
    }

    #[test]
    fn an_app_read_names_the_app_as_the_routes_do() {
        use axum::http::Method;
        use corral_state::auth::Action;
        let read = |path: &str| super::route_action(&Method::GET, "/v2/apps/{*rest}", path);
        let dev_web = Some((Action::ViewApps, Some("/dev/web".to_owned())));
        assert_eq!(read("/v2/apps/dev/web"), dev_web);
        // The `marathon` client's form: its app ids start with a slash.
        assert_eq!(read("/v2/apps//dev/web"), dev_web);
        assert_eq!(read("/v2/apps//dev/web/tasks"), dev_web);
        assert_eq!(read("/v2/apps/dev/web/versions/"), dev_web);
    }

    #[test]
    fn what_no_command_carries_is_decided_by_its_route() {
        use axum::http::Method;
        use corral_state::auth::Action;
        let members = Some((Action::WriteApi, Some("members".to_owned())));
        let action = super::route_action;
        assert_eq!(action(&Method::POST, "/corral/v1/members", "/corral/v1/members"), members);
        let path = "/corral/v1/members/{node_id}";
        assert_eq!(action(&Method::DELETE, path, "/corral/v1/members/4"), members);
        let path = "/corral/v1/leader/transfer";
        assert_eq!(action(&Method::POST, path, path), members);
        let cluster = Some((Action::ReadApi, Some("cluster".to_owned())));
        assert_eq!(action(&Method::GET, "/corral/v1/members", "/corral/v1/members"), cluster);
        for route in ["/master/flags", "/flags/", "/master/flags/"] {
            assert_eq!(action(&Method::GET, route, route), Some((Action::ViewFlags, None)));
        }
        let route = "/master/maintenance/status";
        assert_eq!(
            action(&Method::GET, route, route),
            Some((Action::GetMaintenanceStatuses, None))
        );
        let route = "/maintenance/schedule";
        let schedules = Some((Action::GetMaintenanceSchedules, None));
        assert_eq!(action(&Method::GET, route, route), schedules);
        let route = "/slave/{agent_id}/{*rest}";
        let sandbox = Some((Action::AccessSandboxes, None));
        assert_eq!(action(&Method::GET, route, "/slave/a1/files/read"), sandbox);
        let tasks = Some((Action::ViewTasks, None));
        assert_eq!(action(&Method::GET, "/agent/{agent_id}/{*rest}", "/agent/a1/state"), tasks);
        assert_eq!(action(&Method::GET, route, "/slave/a1/monitor/statistics"), tasks);
        // Writes that go through the log are decided at apply, not here.
        assert_eq!(action(&Method::POST, "/v2/apps", "/v2/apps"), None);
    }

    #[test]
    fn the_trail_and_the_explanations_need_every_view_for_any_object() {
        for route in [
            "/corral/v1/history",
            "/corral/v1/diff",
            "/corral/v1/commands",
            "/corral/v1/explain/task/{id}",
            "/corral/v1/explain/deployment/{id}",
            "/corral/v1/allocation/explain",
        ] {
            assert_eq!(super::route_views(route), super::WHOLE_VIEW, "{route}");
        }
        for route in ["/corral/v1/state", "/master/state", "/corral/v1/cluster", "/v2/apps"] {
            assert!(super::route_views(route).is_empty(), "{route}");
        }
    }

    #[test]
    fn passwords_hash_with_a_salt_and_verify() {
        let first = super::hash_password("pw").expect("hashes");
        let second = super::hash_password("pw").expect("hashes");
        assert_ne!(first, second);
        assert!(first.starts_with("$argon2id$"));
        assert!(super::verify_password("pw", &first));
        assert!(!super::verify_password("wrong", &first));
    }
}
