//! Identity and access control as replicated state: tokens (a public accessor id and the
//! blake3 hash of a random secret), Basic credentials (a principal and a slow-KDF hash in PHC
//! form), policies in Mesos's ACL shape (first match wins), the auth mode and whether the
//! cluster was bootstrapped. No secret is ever held here, only hashes.
//!
//! [`AuthState::decide`] is the one decision: the API calls it on the state it reads to
//! answer early and to filter reads; `ClusterState::apply` calls it on the state at the
//! command's log position, and that verdict is the one that counts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `off`: nobody is asked who they are (today's behaviour, `corral dev`); `permissive`:
/// decisions are made and counted but everything is allowed, as Mesos's `permissive: true`;
/// `enforce`: default-deny.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    #[default]
    Off,
    Permissive,
    Enforce,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Off => "off",
            AuthMode::Permissive => "permissive",
            AuthMode::Enforce => "enforce",
        }
    }

    pub fn parse(text: &str) -> Option<AuthMode> {
        match text {
            "off" => Some(AuthMode::Off),
            "permissive" => Some(AuthMode::Permissive),
            "enforce" => Some(AuthMode::Enforce),
            _ => None,
        }
    }
}

/// A management token may do anything; a client token what the policies allow its principal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Management,
    Client,
}

/// blake3 of a token's secret. Comparing two is constant-time (`blake3::Hash`'s `==`).
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    pub fn of(secret: &str) -> SecretHash {
        SecretHash(*blake3::hash(secret.as_bytes()).as_bytes())
    }

    /// Whether `secret` hashes to this, in constant time.
    pub fn verifies(&self, secret: &str) -> bool {
        blake3::hash(secret.as_bytes()) == blake3::Hash::from_bytes(self.0)
    }
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretHash(")?;
        for byte in &self.0[..4] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…)")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// Public: names the token in the log, the audit trail and `corral acl token list`.
    pub accessor: String,
    /// The name ACL rules match (`principals`).
    pub principal: String,
    pub kind: TokenKind,
    pub secret_hash: SecretHash,
    pub description: String,
}

/// A Mesos-style credential for HTTP Basic: the principal and its secret hashed with a slow
/// KDF (PHC string form), verified by the API through a cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub principal: String,
    pub phc: String,
}

/// The actions a rule can name: Mesos's ACL actions, then Marathon's on app-id prefixes,
/// then the native API's read and write scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Action {
    RegisterFrameworks,
    RunTasks,
    TeardownFrameworks,
    ReserveResources,
    UnreserveResources,
    UpdateWeights,
    UpdateQuotas,
    GetQuotas,
    ViewFrameworks,
    ViewTasks,
    ViewExecutors,
    ViewRoles,
    ViewFlags,
    UpdateMaintenanceSchedules,
    GetMaintenanceSchedules,
    StartMaintenances,
    StopMaintenances,
    GetMaintenanceStatuses,
    DrainAgents,
    DeactivateAgents,
    ReactivateAgents,
    MarkAgentsGone,
    RegisterAgents,
    AccessSandboxes,
    CreateApps,
    UpdateApps,
    DeleteApps,
    ViewApps,
    ReadApi,
    WriteApi,
}

impl Action {
    pub const ALL: [Action; 30] = [
        Action::RegisterFrameworks,
        Action::RunTasks,
        Action::TeardownFrameworks,
        Action::ReserveResources,
        Action::UnreserveResources,
        Action::UpdateWeights,
        Action::UpdateQuotas,
        Action::GetQuotas,
        Action::ViewFrameworks,
        Action::ViewTasks,
        Action::ViewExecutors,
        Action::ViewRoles,
        Action::ViewFlags,
        Action::UpdateMaintenanceSchedules,
        Action::GetMaintenanceSchedules,
        Action::StartMaintenances,
        Action::StopMaintenances,
        Action::GetMaintenanceStatuses,
        Action::DrainAgents,
        Action::DeactivateAgents,
        Action::ReactivateAgents,
        Action::MarkAgentsGone,
        Action::RegisterAgents,
        Action::AccessSandboxes,
        Action::CreateApps,
        Action::UpdateApps,
        Action::DeleteApps,
        Action::ViewApps,
        Action::ReadApi,
        Action::WriteApi,
    ];

    /// The key in Mesos's ACL JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::RegisterFrameworks => "register_frameworks",
            Action::RunTasks => "run_tasks",
            Action::TeardownFrameworks => "teardown_frameworks",
            Action::ReserveResources => "reserve_resources",
            Action::UnreserveResources => "unreserve_resources",
            Action::UpdateWeights => "update_weights",
            Action::UpdateQuotas => "update_quotas",
            Action::GetQuotas => "get_quotas",
            Action::ViewFrameworks => "view_frameworks",
            Action::ViewTasks => "view_tasks",
            Action::ViewExecutors => "view_executors",
            Action::ViewRoles => "view_roles",
            Action::ViewFlags => "view_flags",
            Action::UpdateMaintenanceSchedules => "update_maintenance_schedules",
            Action::GetMaintenanceSchedules => "get_maintenance_schedules",
            Action::StartMaintenances => "start_maintenances",
            Action::StopMaintenances => "stop_maintenances",
            Action::GetMaintenanceStatuses => "get_maintenance_statuses",
            Action::DrainAgents => "drain_agents",
            Action::DeactivateAgents => "deactivate_agents",
            Action::ReactivateAgents => "reactivate_agents",
            Action::MarkAgentsGone => "mark_agents_gone",
            Action::RegisterAgents => "register_agents",
            Action::AccessSandboxes => "access_sandboxes",
            Action::CreateApps => "create_apps",
            Action::UpdateApps => "update_apps",
            Action::DeleteApps => "delete_apps",
            Action::ViewApps => "view_apps",
            Action::ReadApi => "read_api",
            Action::WriteApi => "write_api",
        }
    }

    /// The rule's object key in Mesos's ACL JSON (Corral's own for apps and the native API).
    pub fn object_key(self) -> &'static str {
        match self {
            Action::RegisterFrameworks
            | Action::ReserveResources
            | Action::UnreserveResources
            | Action::UpdateWeights
            | Action::UpdateQuotas
            | Action::GetQuotas
            | Action::ViewRoles => "roles",
            Action::RunTasks
            | Action::ViewFrameworks
            | Action::ViewTasks
            | Action::ViewExecutors
            | Action::AccessSandboxes => "users",
            Action::TeardownFrameworks => "framework_principals",
            Action::ViewFlags => "flags",
            Action::UpdateMaintenanceSchedules
            | Action::GetMaintenanceSchedules
            | Action::StartMaintenances
            | Action::StopMaintenances
            | Action::GetMaintenanceStatuses => "machines",
            Action::DrainAgents
            | Action::DeactivateAgents
            | Action::ReactivateAgents
            | Action::MarkAgentsGone
            | Action::RegisterAgents => "agents",
            Action::CreateApps | Action::UpdateApps | Action::DeleteApps | Action::ViewApps => {
                "app_ids"
            }
            Action::ReadApi | Action::WriteApi => "apis",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|action| action.as_str() == text)
    }

    /// App ids match a rule's values as path prefixes (`/dev` covers `/dev/web`), as
    /// Marathon's example authorizer does; everything else matches exactly.
    fn prefix_objects(self) -> bool {
        matches!(
            self,
            Action::CreateApps | Action::UpdateApps | Action::DeleteApps | Action::ViewApps
        )
    }
}

/// A Mesos ACL entity: `{"type": "ANY"}`, `{"type": "NONE"}` or `{"values": [..]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntityMatch {
    Any,
    None,
    Values(Vec<String>),
}

impl EntityMatch {
    /// Mesos's `matches`: ANY and NONE match whatever is asked (NONE to deny it); values
    /// match a named subject or object among them.
    fn matches(&self, asked: Option<&str>, prefix: Prefix) -> bool {
        match self {
            EntityMatch::Any | EntityMatch::None => true,
            EntityMatch::Values(values) => {
                asked.is_some_and(|asked| values.iter().any(|value| prefix.covers(value, asked)))
            }
        }
    }

    /// Mesos's `allows`: ANY allows, NONE denies, values allow what they match.
    fn allows(&self) -> bool {
        !matches!(self, EntityMatch::None)
    }
}

#[derive(Clone, Copy)]
enum Prefix {
    Exact,
    Path,
}

impl Prefix {
    fn covers(self, value: &str, asked: &str) -> bool {
        match self {
            Prefix::Exact => value == asked,
            Prefix::Path => {
                let value = value.trim_end_matches('/');
                value.is_empty()
                    || asked == value
                    || asked.strip_prefix(value).is_some_and(|rest| rest.starts_with('/'))
            }
        }
    }
}

/// One rule of an action: who (`principals`) on what (the action's object).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub principals: EntityMatch,
    pub objects: EntityMatch,
}

/// A named policy: Mesos's ACL document. Within an action, the first rule that matches
/// decides. `permissive` lets through what no rule of any policy matches (Mesos defaults it
/// to true; Corral to false: enforcing means default-deny).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub permissive: bool,
    /// Sorted by action; each action's rules in the order given.
    pub rules: Vec<(Action, Vec<Rule>)>,
}

impl Policy {
    fn rules_of(&self, action: Action) -> &[Rule] {
        match self.rules.binary_search_by(|(candidate, _)| candidate.cmp(&action)) {
            Ok(at) => &self.rules[at].1,
            Err(_) => &[],
        }
    }
}

/// Who sent a request, as the API authenticated it: a token's accessor id or a Basic
/// credential's principal; `None` for a request without credentials.
pub type Identity<'a> = Option<&'a str>;

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum DenialReason {
    #[error("no credentials were given")]
    Anonymous,
    #[error("the token or credential '{0}' does not exist (revoked or never created)")]
    UnknownIdentity(String),
    #[error("no rule allows it")]
    NoRuleAllows,
    #[error("rule {rule} of policy '{policy}' denies it")]
    DeniedByRule { policy: String, rule: u32 },
    #[error("the authenticated principal '{authenticated}' is not the framework's principal '{framework}'")]
    PrincipalMismatch { authenticated: String, framework: String },
    #[error("agent {agent_id} registered with '{bound}', not '{identity}'")]
    NotTheAgent { agent_id: String, bound: String, identity: String },
    #[error("access control is not bootstrapped yet")]
    NotBootstrapped,
    #[error("a client may not act as the leader")]
    ActingAsLeader,
}

/// A refusal for the log and the API: who, what, on what, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{} may not {action}{}: {reason}", .principal.as_deref().map_or("an anonymous client".to_owned(), |p| format!("principal '{p}'")), .object.as_deref().map_or(String::new(), |o| format!(" on '{o}'")))]
pub struct Denial {
    pub principal: Option<String>,
    pub action: String,
    pub object: Option<String>,
    pub reason: DenialReason,
}

impl Denial {
    /// Whether presenting (other) credentials could help: the API answers 401, not 403.
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self.reason, DenialReason::Anonymous | DenialReason::UnknownIdentity(_))
    }
}

/// Who an identity turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal<'a> {
    pub name: &'a str,
    pub kind: TokenKind,
}

/// Access control, replicated: part of `ClusterState`, its snapshot and its digest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    pub(crate) mode: AuthMode,
    pub(crate) bootstrapped: bool,
    pub(crate) tokens: BTreeMap<String, Token>,
    pub(crate) credentials: BTreeMap<String, Credential>,
    pub(crate) policies: BTreeMap<String, Policy>,
    /// Which identity registered each agent: only it (or a management token) may speak for
    /// the agent afterwards.
    pub(crate) agent_identities: BTreeMap<crate::AgentId, String>,
}

impl AuthState {
    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    pub fn is_bootstrapped(&self) -> bool {
        self.bootstrapped
    }

    pub fn token(&self, accessor: &str) -> Option<&Token> {
        self.tokens.get(accessor)
    }

    pub fn tokens(&self) -> impl Iterator<Item = &Token> {
        self.tokens.values()
    }

    pub fn credential(&self, principal: &str) -> Option<&Credential> {
        self.credentials.get(principal)
    }

    pub fn credentials(&self) -> impl Iterator<Item = &Credential> {
        self.credentials.values()
    }

    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.get(name)
    }

    pub fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.policies.values()
    }

    pub fn agent_identity(&self, agent_id: &crate::AgentId) -> Option<&str> {
        self.agent_identities.get(agent_id).map(String::as_str)
    }

    /// The principal behind an identity: a token by accessor, else a credential by name.
    pub fn principal(&self, identity: &str) -> Option<Principal<'_>> {
        if let Some(token) = self.tokens.get(identity) {
            return Some(Principal { name: &token.principal, kind: token.kind });
        }
        self.credentials
            .get(identity)
            .map(|credential| Principal { name: &credential.principal, kind: TokenKind::Client })
    }

    /// The decision for one action on one object (`None`: an action without an object),
    /// whatever the mode: callers apply the mode.
    pub fn decide(
        &self,
        identity: Identity<'_>,
        action: Action,
        object: Option<&str>,
    ) -> Result<(), Box<Denial>> {
        let deny = |principal: Option<&str>, reason| {
            Box::new(Denial {
                principal: principal.map(str::to_owned),
                action: action.as_str().to_owned(),
                object: object.map(str::to_owned),
                reason,
            })
        };
        let principal = match identity {
            None => None,
            Some(identity) => match self.principal(identity) {
                None => return Err(deny(None, DenialReason::UnknownIdentity(identity.to_owned()))),
                Some(Principal { kind: TokenKind::Management, .. }) => return Ok(()),
                Some(Principal { name, .. }) => Some(name),
            },
        };
        let prefix = if action.prefix_objects() { Prefix::Path } else { Prefix::Exact };
        for policy in self.policies.values() {
            for (number, rule) in policy.rules_of(action).iter().enumerate() {
                if rule.principals.matches(principal, Prefix::Exact)
                    && rule.objects.matches(object, prefix)
                {
                    if rule.principals.allows() && rule.objects.allows() {
                        return Ok(());
                    }
                    let rule = u32::try_from(number).expect("a policy holds far fewer rules");
                    return Err(deny(
                        principal,
                        DenialReason::DeniedByRule { policy: policy.name.clone(), rule },
                    ));
                }
            }
        }
        if self.policies.values().any(|policy| policy.permissive) {
            return Ok(());
        }
        if principal.is_none() {
            return Err(deny(None, DenialReason::Anonymous));
        }
        Err(deny(principal, DenialReason::NoRuleAllows))
    }

    /// Whether the identity exists (a live token or credential); `None` is anonymous.
    pub fn authenticate(
        &self,
        identity: Identity<'_>,
    ) -> Result<Option<Principal<'_>>, Box<Denial>> {
        match identity {
            None => Ok(None),
            Some(identity) => self.principal(identity).map(Some).ok_or_else(|| {
                Box::new(Denial {
                    principal: None,
                    action: "authenticate".to_owned(),
                    object: None,
                    reason: DenialReason::UnknownIdentity(identity.to_owned()),
                })
            }),
        }
    }
}

/// A change to access control, as the event stream tells it: names and accessor ids, never a
/// hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AclChange {
    Bootstrapped { accessor: String },
    TokenCreated { accessor: String, principal: String, kind: TokenKind },
    TokenRevoked { accessor: String },
    CredentialPut { principal: String },
    CredentialDeleted { principal: String },
    PolicyPut { name: String },
    PolicyDeleted { name: String },
    ModeSet { mode: AuthMode },
}

/// A field of a Mesos ACL document that is wrong, and how.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct AclJsonError {
    pub field: String,
    pub problem: String,
}

fn json_error(field: impl Into<String>, problem: impl Into<String>) -> AclJsonError {
    AclJsonError { field: field.into(), problem: problem.into() }
}

fn entity_from_json(field: &str, value: &serde_json::Value) -> Result<EntityMatch, AclJsonError> {
    let object = value.as_object().ok_or_else(|| json_error(field, "must be an object"))?;
    match (object.get("type"), object.get("values")) {
        (Some(kind), None) => match kind.as_str() {
            Some("ANY") => Ok(EntityMatch::Any),
            Some("NONE") => Ok(EntityMatch::None),
            _ => Err(json_error(format!("{field}.type"), "must be \"ANY\" or \"NONE\"")),
        },
        (None, Some(values)) => {
            let values = values
                .as_array()
                .ok_or_else(|| json_error(format!("{field}.values"), "must be a list of strings"))?
                .iter()
                .map(|value| value.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    json_error(format!("{field}.values"), "must be a list of strings")
                })?;
            Ok(EntityMatch::Values(values))
        }
        _ => Err(json_error(field, "must have exactly one of \"type\" and \"values\"")),
    }
}

fn entity_to_json(entity: &EntityMatch) -> serde_json::Value {
    match entity {
        EntityMatch::Any => serde_json::json!({"type": "ANY"}),
        EntityMatch::None => serde_json::json!({"type": "NONE"}),
        EntityMatch::Values(values) => serde_json::json!({ "values": values }),
    }
}

impl Policy {
    /// Reads Mesos's ACL JSON (`{"permissive": bool, "<action>": [{"principals": Entity,
    /// "<object>": Entity}, ..]}`) plus Corral's actions; an unknown key is an error naming it.
    pub fn from_mesos_json(
        name: &str,
        document: &serde_json::Value,
    ) -> Result<Policy, AclJsonError> {
        let object = document.as_object().ok_or_else(|| json_error("acls", "must be an object"))?;
        let mut permissive = false;
        let mut rules = Vec::new();
        for (key, value) in object {
            if key == "permissive" {
                permissive = value
                    .as_bool()
                    .ok_or_else(|| json_error("acls.permissive", "must be true or false"))?;
                continue;
            }
            let action = Action::parse(key).ok_or_else(|| {
                json_error(format!("acls.{key}"), "is not an action Corral knows")
            })?;
            let list = value
                .as_array()
                .ok_or_else(|| json_error(format!("acls.{key}"), "must be a list of rules"))?;
            let mut parsed = Vec::with_capacity(list.len());
            for (number, rule) in list.iter().enumerate() {
                let field = format!("acls.{key}[{number}]");
                let rule =
                    rule.as_object().ok_or_else(|| json_error(&field, "must be an object"))?;
                let object_key = action.object_key();
                for present in rule.keys() {
                    if present != "principals" && present != object_key {
                        return Err(json_error(
                            format!("{field}.{present}"),
                            format!("is not a key of {key} (principals, {object_key})"),
                        ));
                    }
                }
                let principals = rule
                    .get("principals")
                    .ok_or_else(|| json_error(format!("{field}.principals"), "is missing"))?;
                let objects = rule
                    .get(object_key)
                    .ok_or_else(|| json_error(format!("{field}.{object_key}"), "is missing"))?;
                parsed.push(Rule {
                    principals: entity_from_json(&format!("{field}.principals"), principals)?,
                    objects: entity_from_json(&format!("{field}.{object_key}"), objects)?,
                });
            }
            rules.push((action, parsed));
        }
        rules.sort_by_key(|(action, _)| *action);
        Ok(Policy { name: name.to_owned(), permissive, rules })
    }

    /// The policy as Mesos's ACL JSON.
    pub fn to_mesos_json(&self) -> serde_json::Value {
        let mut document = serde_json::Map::new();
        document.insert("permissive".to_owned(), serde_json::Value::Bool(self.permissive));
        for (action, rules) in &self.rules {
            let rules = rules
                .iter()
                .map(|rule| {
                    let mut object = serde_json::Map::new();
                    object.insert("principals".to_owned(), entity_to_json(&rule.principals));
                    object.insert(action.object_key().to_owned(), entity_to_json(&rule.objects));
                    serde_json::Value::Object(object)
                })
                .collect();
            document.insert(action.as_str().to_owned(), serde_json::Value::Array(rules));
        }
        serde_json::Value::Object(document)
    }
}
