//! Access control at apply time: every command is checked against the ACLs in the state at its
//! log position before its handler runs, so a token revoked while a command was in flight is
//! refused the same way on every master (the etcd lesson: permission checks read only
//! replicated state). The ACL commands' own handlers are here too.

use crate::auth::{
    AclChange, Action, AuthMode, Credential, Denial, DenialReason, Policy, Principal, Token,
    TokenKind,
};
use crate::cluster::ClusterState;
use crate::model::MachineId;
use crate::Reservation;
use crate::{Actor, AgentId, AppId, Command, Entry, Event, Rejection, Resources};

/// What a command asks to do, as ACL checks.
type Asks = Vec<(Action, Option<String>)>;

fn denial(
    principal: Option<&str>,
    action: &str,
    object: Option<&str>,
    reason: DenialReason,
) -> Box<Denial> {
    Box::new(Denial {
        principal: principal.map(str::to_owned),
        action: action.to_owned(),
        object: object.map(str::to_owned),
        reason,
    })
}

impl ClusterState {
    /// Access control, decided from this state alone.
    pub fn auth(&self) -> &crate::auth::AuthState {
        &self.auth
    }

    /// The apply-time check. Leader loops are trusted; a client's SUBSCRIBE and agent
    /// registration, proposed as the leader when access control was off, are not.
    pub(crate) fn authorize(&self, entry: &Entry) -> Result<(), Rejection> {
        let identity = entry.actor.identity();
        if identity.is_some() && *entry.actor.acting() == Actor::Leader {
            return Err(Rejection::Unauthorized(denial(
                None,
                entry.command.kind(),
                None,
                DenialReason::ActingAsLeader,
            )));
        }
        let from_client = !matches!(entry.actor, Actor::Leader)
            || matches!(entry.command, Command::Subscribe { .. } | Command::RegisterAgent { .. });
        if !from_client || matches!(entry.command, Command::BootstrapAcl { .. }) {
            return Ok(());
        }
        if entry.command.administers_acl() {
            // Administering access control is never open once there is access control to
            // administer, whatever the mode; before bootstrap there is nothing to administer.
            if !self.auth.bootstrapped {
                return Err(Rejection::Unauthorized(denial(
                    None,
                    entry.command.kind(),
                    None,
                    DenialReason::NotBootstrapped,
                )));
            }
            return self
                .auth
                .decide(identity, Action::WriteApi, Some("acl"))
                .map_err(Rejection::Unauthorized);
        }
        match self.auth.mode {
            AuthMode::Off | AuthMode::Permissive => Ok(()),
            AuthMode::Enforce => {
                self.check_client_command(entry, identity).map_err(Rejection::Unauthorized)
            }
        }
    }

    /// Whether `identity` may issue this command, whatever the mode (the API uses it to
    /// answer early; `authorize` applies the mode).
    pub fn check_client_command(
        &self,
        entry: &Entry,
        identity: Option<&str>,
    ) -> Result<(), Box<Denial>> {
        let kind = entry.command.kind();
        let principal = self.auth.authenticate(identity).map_err(|mut denial| {
            kind.clone_into(&mut denial.action);
            denial
        })?;
        let name = principal.as_ref().map(|principal| principal.name);
        let management = matches!(principal, Some(Principal { kind: TokenKind::Management, .. }));
        match entry.actor.acting() {
            Actor::Framework(framework_id) => {
                if identity.is_none() {
                    return Err(denial(None, kind, None, DenialReason::Anonymous));
                }
                let framework_principal = self
                    .frameworks
                    .get(framework_id)
                    .and_then(|framework| framework.info.principal.as_deref());
                if let (Some(framework), Some(name)) = (framework_principal, name) {
                    if framework != name && !management {
                        return Err(denial(
                            Some(name),
                            kind,
                            None,
                            DenialReason::PrincipalMismatch {
                                authenticated: name.to_owned(),
                                framework: framework.to_owned(),
                            },
                        ));
                    }
                }
            }
            Actor::Agent(agent_id) => {
                let Some(identity) = identity else {
                    return Err(denial(None, kind, None, DenialReason::Anonymous));
                };
                match self.auth.agent_identity(agent_id) {
                    Some(bound) if bound != identity && !management => {
                        return Err(denial(
                            name,
                            kind,
                            Some(agent_id.as_str()),
                            DenialReason::NotTheAgent {
                                agent_id: agent_id.to_string(),
                                bound: bound.to_owned(),
                                identity: identity.to_owned(),
                            },
                        ));
                    }
                    Some(_) => {}
                    None => {
                        let host = self.agent_host(agent_id);
                        self.auth.decide(Some(identity), Action::RegisterAgents, Some(&host))?;
                    }
                }
            }
            Actor::Leader | Actor::Operator { .. } | Actor::Client { .. } => {}
        }
        if let Command::Subscribe { info, .. } = &entry.command {
            if let (Some(asked), Some(name)) = (info.principal.as_deref(), name) {
                if asked != name {
                    return Err(denial(
                        Some(name),
                        kind,
                        None,
                        DenialReason::PrincipalMismatch {
                            authenticated: name.to_owned(),
                            framework: asked.to_owned(),
                        },
                    ));
                }
            }
        }
        let asks = self.asks(entry);
        if asks.is_empty() && identity.is_none() {
            if let Actor::Operator { .. } = entry.actor.acting() {
                return Err(denial(None, kind, None, DenialReason::Anonymous));
            }
        }
        for (action, object) in asks {
            self.auth.decide(identity, action, object.as_deref())?;
        }
        Ok(())
    }

    /// Why the sender of `entry` may not run a task as `user` (`run_tasks`), when access
    /// control is enforced: decided from this state for each task of an ACCEPT, so every
    /// master launches and refuses the same tasks. Leader loops are trusted.
    pub(crate) fn run_tasks_refusal(
        &self,
        entry: &Entry,
        user: Option<&str>,
    ) -> Option<Box<Denial>> {
        if self.auth.mode != AuthMode::Enforce {
            return None;
        }
        self.run_tasks_denial(entry, user)
    }

    fn run_tasks_denial(&self, entry: &Entry, user: Option<&str>) -> Option<Box<Denial>> {
        if matches!(entry.actor, Actor::Leader) {
            return None;
        }
        self.auth.decide(entry.actor.identity(), Action::RunTasks, user).err()
    }

    /// The first task of an ACCEPT its sender may not run, whatever the mode: what the API
    /// counts in permissive mode (with `enforce`, `apply` turns each such task into
    /// TASK_ERROR and launches the rest).
    pub fn check_run_tasks(&self, entry: &Entry) -> Option<Box<Denial>> {
        let Command::Accept { framework_id, operations, .. } = &entry.command else {
            return None;
        };
        let framework_user =
            self.frameworks.get(framework_id).map(|framework| framework.info.user.as_str());
        operations
            .iter()
            .flat_map(|operation| match operation {
                crate::Operation::Launch { task_infos }
                | crate::Operation::LaunchGroup { task_infos, .. } => task_infos.as_slice(),
                crate::Operation::Reserve { .. } | crate::Operation::Unreserve { .. } => &[],
            })
            .find_map(|task| {
                let user = task.command.as_ref().and_then(|command| command.user.as_deref());
                self.run_tasks_denial(entry, user.or(framework_user))
            })
    }

    fn agent_host(&self, agent_id: &AgentId) -> String {
        self.agents
            .get(agent_id)
            .map_or_else(|| agent_id.to_string(), |agent| agent.info.hostname.clone())
    }

    fn app_asks(&self, app_id: &AppId, asks: &mut Asks) {
        let action = if self.services.apps.contains_key(app_id) {
            Action::UpdateApps
        } else {
            Action::CreateApps
        };
        asks.push((action, Some(app_id.to_string())));
    }

    /// The ACL checks a command needs, in a fixed order (the first refusal is the one told).
    fn asks(&self, entry: &Entry) -> Asks {
        use Command as C;
        let mut asks = Asks::new();
        let machines = |machines: &[MachineId], action: Action, asks: &mut Asks| {
            for machine in machines {
                let name = machine.hostname.clone().or_else(|| machine.ip.clone());
                asks.push((action, name));
            }
        };
        let roles = |resources: &Resources, action: Action, asks: &mut Asks| {
            let mut seen: Vec<String> = Vec::new();
            for resource in resources.iter() {
                let role = match &resource.reservation {
                    Reservation::Unreserved => "*".to_owned(),
                    Reservation::Static { role } | Reservation::Dynamic { role, .. } => {
                        role.to_string()
                    }
                };
                if !seen.contains(&role) {
                    seen.push(role);
                }
            }
            asks.extend(seen.into_iter().map(|role| (action, Some(role))));
        };
        match &entry.command {
            C::RegisterAgent { info, .. } | C::ReregisterAgent { info, .. } => {
                asks.push((Action::RegisterAgents, Some(info.hostname.clone())));
            }
            C::Subscribe { info, .. } => {
                for role in &info.roles {
                    asks.push((Action::RegisterFrameworks, Some(role.to_string())));
                }
            }
            C::Teardown { framework_id } => {
                if let Actor::Operator { .. } = entry.actor.acting() {
                    let principal = self
                        .frameworks
                        .get(framework_id)
                        .and_then(|framework| framework.info.principal.clone());
                    asks.push((Action::TeardownFrameworks, principal));
                }
            }
            // `run_tasks` is decided per task when the ACCEPT applies (`run_tasks_refusal`):
            // a refused task becomes TASK_ERROR, the others launch, as in Mesos.
            C::Accept { operations, .. } => {
                for operation in operations {
                    match operation {
                        crate::Operation::Reserve { resources } => {
                            roles(resources, Action::ReserveResources, &mut asks)
                        }
                        crate::Operation::Unreserve { resources } => {
                            roles(resources, Action::UnreserveResources, &mut asks)
                        }
                        crate::Operation::Launch { .. } | crate::Operation::LaunchGroup { .. } => {}
                    }
                }
            }
            C::UpdateWeights { weights } => {
                asks.extend(
                    weights.iter().map(|(role, _)| (Action::UpdateWeights, Some(role.to_string()))),
                );
            }
            C::UpdateQuota { configs } => {
                asks.extend(
                    configs
                        .iter()
                        .map(|config| (Action::UpdateQuotas, Some(config.role.to_string()))),
                );
            }
            C::UpdateMaintenanceSchedule { windows } => {
                for window in windows {
                    machines(&window.machine_ids, Action::UpdateMaintenanceSchedules, &mut asks);
                }
                if windows.is_empty() {
                    asks.push((Action::UpdateMaintenanceSchedules, None));
                }
            }
            C::StartMaintenance { machines: list } => {
                machines(list, Action::StartMaintenances, &mut asks)
            }
            C::StopMaintenance { machines: list } => {
                machines(list, Action::StopMaintenances, &mut asks)
            }
            C::DrainAgent { agent_id, mark_gone, .. } => {
                let host = self.agent_host(agent_id);
                asks.push((Action::DrainAgents, Some(host.clone())));
                if *mark_gone {
                    asks.push((Action::MarkAgentsGone, Some(host)));
                }
            }
            C::DeactivateAgent { agent_id } => {
                asks.push((Action::DeactivateAgents, Some(self.agent_host(agent_id))))
            }
            C::ReactivateAgent { agent_id } => {
                asks.push((Action::ReactivateAgents, Some(self.agent_host(agent_id))))
            }
            C::MarkAgentGone { agent_id } => {
                asks.push((Action::MarkAgentsGone, Some(self.agent_host(agent_id))))
            }
            C::ReserveResources { resources, .. } => {
                roles(resources, Action::ReserveResources, &mut asks)
            }
            C::UnreserveResources { resources, .. } => {
                roles(resources, Action::UnreserveResources, &mut asks)
            }
            C::UpdateSettings { .. } | C::ChangeSettings { .. } => {
                asks.push((Action::WriteApi, Some("settings".to_owned())))
            }
            C::PutApp { app_id, .. } => self.app_asks(app_id, &mut asks),
            C::PutApps { apps } => {
                apps.iter().for_each(|put| self.app_asks(&put.app_id, &mut asks))
            }
            C::RestartApp { app_id, .. }
            | C::RollBackApp { app_id, .. }
            | C::ResetLaunchDelay { app_id }
            | C::PutAutoscaler { app_id, .. }
            | C::DeleteAutoscaler { app_id } => {
                asks.push((Action::UpdateApps, Some(app_id.to_string())))
            }
            C::DeleteApp { app_id, .. } => {
                asks.push((Action::DeleteApps, Some(app_id.to_string())))
            }
            C::CancelDeployment { deployment_id, .. } => {
                if let Some(deployment) = self.services.deployments.get(deployment_id) {
                    asks.push((Action::UpdateApps, Some(deployment.app_id.to_string())));
                }
            }
            C::KillServiceTasks { task_ids, .. } => {
                for task_id in task_ids {
                    if let Some(app_id) = self.services.instance_apps.get(task_id) {
                        asks.push((Action::UpdateApps, Some(app_id.to_string())));
                    }
                }
            }
            C::BootstrapAcl { .. }
            | C::PutToken { .. }
            | C::RevokeToken { .. }
            | C::PutCredential { .. }
            | C::DeleteCredential { .. }
            | C::PutPolicy { .. }
            | C::DeletePolicy { .. }
            | C::SetAuthMode { .. } => asks.push((Action::WriteApi, Some("acl".to_owned()))),
            // Agent commands are checked by the agent binding; framework calls by the
            // framework's principal; the leader's own commands refuse any client.
            C::AgentHeartbeat { .. }
            | C::UpdateStatus { .. }
            | C::ExecutorMessage { .. }
            | C::DisconnectFramework { .. }
            | C::Decline { .. }
            | C::Revive { .. }
            | C::Suppress { .. }
            | C::Kill { .. }
            | C::Shutdown { .. }
            | C::Acknowledge { .. }
            | C::Reconcile { .. }
            | C::Message { .. }
            | C::OfferResources { .. }
            | C::RescindOffers { .. }
            | C::Tick
            | C::LaunchServiceTasks { .. }
            | C::AutoscaleApp { .. }
            | C::RecordRecommendation { .. } => {}
        }
        asks
    }

    /// After a command was accepted: an agent registered by an identity stays bound to it.
    pub(crate) fn bind_agent_identity(&mut self, entry: &Entry, events: &[Event]) {
        let Some(identity) = entry.actor.identity() else {
            return;
        };
        let agent_id = match &entry.command {
            Command::ReregisterAgent { agent_id, .. } => Some(agent_id.clone()),
            Command::RegisterAgent { .. } => events.iter().find_map(|event| match event {
                Event::AgentAdded { agent_id, .. } => Some(agent_id.clone()),
                _ => None,
            }),
            _ => None,
        };
        if let Some(agent_id) = agent_id {
            self.auth.agent_identities.insert(agent_id, identity.to_owned());
        }
    }

    pub(crate) fn bootstrap_acl(
        &mut self,
        token: &Token,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        if self.auth.bootstrapped {
            return Err(Rejection::AlreadyBootstrapped);
        }
        if token.kind != TokenKind::Management {
            return Err(Rejection::invalid(
                "token.kind",
                "the bootstrap token is a management token",
            ));
        }
        validate_token(token)?;
        self.auth.bootstrapped = true;
        self.auth.tokens.insert(token.accessor.clone(), token.clone());
        events.push(Event::AclChanged {
            change: AclChange::Bootstrapped { accessor: token.accessor.clone() },
        });
        Ok(())
    }

    pub(crate) fn put_token(
        &mut self,
        token: &Token,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        validate_token(token)?;
        if self.auth.tokens.contains_key(&token.accessor)
            || self.auth.credentials.contains_key(&token.accessor)
        {
            return Err(Rejection::AclObjectExists {
                kind: "token".to_owned(),
                name: token.accessor.clone(),
            });
        }
        self.auth.tokens.insert(token.accessor.clone(), token.clone());
        events.push(Event::AclChanged {
            change: AclChange::TokenCreated {
                accessor: token.accessor.clone(),
                principal: token.principal.clone(),
                kind: token.kind,
            },
        });
        Ok(())
    }

    pub(crate) fn revoke_token(
        &mut self,
        accessor: &str,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        let Some(token) = self.auth.tokens.get(accessor) else {
            return Err(unknown("token", accessor));
        };
        let managers =
            self.auth.tokens.values().filter(|token| token.kind == TokenKind::Management).count();
        if token.kind == TokenKind::Management && managers == 1 {
            return Err(Rejection::invalid(
                "accessor",
                "is the last management token; create another before revoking it",
            ));
        }
        self.auth.tokens.remove(accessor);
        events.push(Event::AclChanged {
            change: AclChange::TokenRevoked { accessor: accessor.to_owned() },
        });
        Ok(())
    }

    pub(crate) fn put_credential(
        &mut self,
        credential: &Credential,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        validate_name("credential.principal", &credential.principal)?;
        if credential.phc.is_empty() || !credential.phc.starts_with('$') {
            return Err(Rejection::invalid("credential.phc", "must be a PHC hash string"));
        }
        if self.auth.tokens.contains_key(&credential.principal) {
            return Err(Rejection::AclObjectExists {
                kind: "token".to_owned(),
                name: credential.principal.clone(),
            });
        }
        self.auth.credentials.insert(credential.principal.clone(), credential.clone());
        events.push(Event::AclChanged {
            change: AclChange::CredentialPut { principal: credential.principal.clone() },
        });
        Ok(())
    }

    pub(crate) fn delete_credential(
        &mut self,
        principal: &str,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        if self.auth.credentials.remove(principal).is_none() {
            return Err(unknown("credential", principal));
        }
        events.push(Event::AclChanged {
            change: AclChange::CredentialDeleted { principal: principal.to_owned() },
        });
        Ok(())
    }

    pub(crate) fn put_policy(
        &mut self,
        policy: &Policy,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        validate_name("policy.name", &policy.name)?;
        if !policy.rules.windows(2).all(|pair| pair[0].0 < pair[1].0) {
            return Err(Rejection::invalid(
                "policy.rules",
                "must be sorted by action, each action once",
            ));
        }
        self.auth.policies.insert(policy.name.clone(), policy.clone());
        events
            .push(Event::AclChanged { change: AclChange::PolicyPut { name: policy.name.clone() } });
        Ok(())
    }

    pub(crate) fn delete_policy(
        &mut self,
        name: &str,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        if self.auth.policies.remove(name).is_none() {
            return Err(unknown("policy", name));
        }
        events
            .push(Event::AclChanged { change: AclChange::PolicyDeleted { name: name.to_owned() } });
        Ok(())
    }

    pub(crate) fn set_auth_mode(
        &mut self,
        mode: AuthMode,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        self.auth.mode = mode;
        events.push(Event::AclChanged { change: AclChange::ModeSet { mode } });
        Ok(())
    }
}

fn unknown(kind: &str, name: &str) -> Rejection {
    Rejection::UnknownAclObject { kind: kind.to_owned(), name: name.to_owned() }
}

fn validate_name(field: &str, name: &str) -> Result<(), Rejection> {
    if name.is_empty() || name.len() > 256 || name.chars().any(|c| c.is_control() || c == ':') {
        return Err(Rejection::invalid(
            field,
            "must be 1 to 256 characters without ':' or control characters",
        ));
    }
    Ok(())
}

fn validate_token(token: &Token) -> Result<(), Rejection> {
    validate_name("token.accessor", &token.accessor)?;
    validate_name("token.principal", &token.principal)
}
