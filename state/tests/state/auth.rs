//! Access control decided at apply time: bootstrap once, ACL administration, the modes, Mesos
//! ACL semantics (first match wins, ANY/NONE), app-id prefixes, agent bindings, revocation
//! while a command is in flight, and snapshots that carry hashes only.

use corral_state::auth::{
    AclChange, Action, AuthMode, Credential, Denial, DenialReason, EntityMatch, Policy, Rule,
    SecretHash, Token, TokenKind,
};
use corral_state::model::{AgentInfo, Attributes};
use corral_state::{Actor, ClusterState, Command, Event, FrameworkId, Outcome, Rejection, Scalar};
use proptest::prelude::*;

use super::support::{framework_info, res, role, World};

const ROOT_SECRET: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn token(accessor: &str, principal: &str, kind: TokenKind, secret: &str) -> Token {
    Token {
        accessor: accessor.to_owned(),
        principal: principal.to_owned(),
        kind,
        secret_hash: SecretHash::of(secret),
        description: String::new(),
    }
}

fn client(identity: &str, acting: Actor) -> Actor {
    Actor::Client { identity: identity.to_owned(), acting: Box::new(acting) }
}

fn operator(identity: &str) -> Actor {
    client(identity, Actor::Operator { principal: None })
}

fn values(items: &[&str]) -> EntityMatch {
    EntityMatch::Values(items.iter().map(|item| (*item).to_owned()).collect())
}

fn policy(name: &str, rules: Vec<(Action, Vec<Rule>)>) -> Policy {
    Policy { name: name.to_owned(), permissive: false, rules }
}

fn rule(principals: EntityMatch, objects: EntityMatch) -> Rule {
    Rule { principals, objects }
}

fn denied(
    principal: Option<&str>,
    action: &str,
    object: Option<&str>,
    reason: DenialReason,
) -> Rejection {
    Rejection::Unauthorized(Box::new(Denial {
        principal: principal.map(str::to_owned),
        action: action.to_owned(),
        object: object.map(str::to_owned),
        reason,
    }))
}

/// A bootstrapped world in enforce mode with a management token `root`, a client token `dev`
/// (principal `dev`) and a policy letting `dev` register frameworks in role `dev` only.
fn enforcing() -> World {
    enforcing_in(World::new())
}

/// `enforcing` on a world already set up (agents register before enforcement here).
fn enforcing_in(mut world: World) -> World {
    world.ok(
        Actor::Operator { principal: None },
        Command::BootstrapAcl { token: token("root", "root", TokenKind::Management, ROOT_SECRET) },
    );
    world.ok(
        operator("root"),
        Command::PutToken { token: token("dev", "dev", TokenKind::Client, "dev-secret") },
    );
    world.ok(
        operator("root"),
        Command::PutPolicy {
            policy: policy(
                "frameworks",
                vec![(
                    Action::RegisterFrameworks,
                    vec![
                        rule(values(&["dev"]), values(&["dev"])),
                        rule(EntityMatch::Any, EntityMatch::None),
                    ],
                )],
            ),
        },
    );
    world.ok(operator("root"), Command::SetAuthMode { mode: AuthMode::Enforce });
    world
}

#[test]
fn bootstrap_works_once_and_says_so_without_a_hash() {
    let mut world = World::new();
    let events = world.ok(
        Actor::Operator { principal: None },
        Command::BootstrapAcl { token: token("root", "root", TokenKind::Management, ROOT_SECRET) },
    );
    assert_eq!(
        events,
        vec![Event::AclChanged { change: AclChange::Bootstrapped { accessor: "root".to_owned() } }]
    );
    let rejection = world.rejected(
        Actor::Operator { principal: None },
        Command::BootstrapAcl { token: token("again", "x", TokenKind::Management, "other") },
    );
    assert_eq!(rejection, Rejection::AlreadyBootstrapped);
    assert!(world.state.auth().is_bootstrapped());
    assert!(world.state.auth().token("again").is_none());
}

#[test]
fn administering_access_control_needs_bootstrap_then_management_whatever_the_mode() {
    let mut world = World::new();
    let put = Command::PutToken { token: token("dev", "dev", TokenKind::Client, "s") };
    assert_eq!(
        world.rejected(Actor::Operator { principal: None }, put.clone()),
        denied(None, "put_token", None, DenialReason::NotBootstrapped)
    );
    world.ok(
        Actor::Operator { principal: None },
        Command::BootstrapAcl { token: token("root", "root", TokenKind::Management, ROOT_SECRET) },
    );
    // Mode is still off, yet nobody but a management token administers access control.
    assert_eq!(world.state.auth().mode(), AuthMode::Off);
    assert_eq!(
        world.rejected(Actor::Operator { principal: None }, put.clone()),
        denied(None, "write_api", Some("acl"), DenialReason::Anonymous)
    );
    world.ok(operator("root"), put);
    assert_eq!(
        world.rejected(operator("dev"), Command::SetAuthMode { mode: AuthMode::Off }),
        denied(Some("dev"), "write_api", Some("acl"), DenialReason::NoRuleAllows)
    );
    assert_eq!(
        world.rejected(operator("stolen"), Command::SetAuthMode { mode: AuthMode::Off }),
        denied(None, "write_api", Some("acl"), DenialReason::UnknownIdentity("stolen".to_owned()))
    );
}

#[test]
fn the_last_management_token_is_not_revoked() {
    let mut world = enforcing();
    assert_eq!(
        world.rejected(operator("root"), Command::RevokeToken { accessor: "root".to_owned() }),
        Rejection::invalid(
            "accessor",
            "is the last management token; create another before revoking it"
        )
    );
    assert_eq!(
        world.rejected(operator("root"), Command::RevokeToken { accessor: "nope".to_owned() }),
        Rejection::UnknownAclObject { kind: "token".to_owned(), name: "nope".to_owned() }
    );
}

#[test]
fn mode_off_and_permissive_allow_what_enforce_refuses() {
    let mut world = enforcing();
    let weights = Command::UpdateWeights { weights: vec![(role("eng"), Scalar::from_units(2))] };
    assert_eq!(
        world.rejected(operator("dev"), weights.clone()),
        denied(Some("dev"), "update_weights", Some("eng"), DenialReason::NoRuleAllows)
    );
    assert_eq!(
        world.rejected(Actor::Operator { principal: None }, weights.clone()),
        denied(None, "update_weights", Some("eng"), DenialReason::Anonymous)
    );
    world.ok(operator("root"), Command::SetAuthMode { mode: AuthMode::Permissive });
    world.ok(operator("dev"), weights.clone());
    world.ok(operator("root"), Command::SetAuthMode { mode: AuthMode::Off });
    world.ok(Actor::Operator { principal: None }, weights);
}

#[test]
fn first_matching_rule_decides_and_none_denies() {
    let mut world = enforcing();
    let subscribe = |roles: &[&str], principal: Option<&str>| {
        let mut info = framework_info("fw", roles);
        info.principal = principal.map(str::to_owned);
        Command::Subscribe { framework_id: None, info }
    };
    let events = world
        .ok(client("dev", Actor::Operator { principal: None }), subscribe(&["dev"], Some("dev")));
    assert!(matches!(&events[..], [Event::FrameworkAdded { .. }]), "{events:?}");
    assert_eq!(
        world.rejected(
            client("dev", Actor::Operator { principal: None }),
            subscribe(&["prod"], Some("dev"))
        ),
        denied(
            Some("dev"),
            "register_frameworks",
            Some("prod"),
            DenialReason::DeniedByRule { policy: "frameworks".to_owned(), rule: 1 }
        )
    );
    // FrameworkInfo.principal must be the authenticated one, as Mesos insists.
    assert_eq!(
        world.rejected(
            client("dev", Actor::Operator { principal: None }),
            subscribe(&["dev"], Some("ops"))
        ),
        denied(
            Some("dev"),
            "subscribe",
            None,
            DenialReason::PrincipalMismatch {
                authenticated: "dev".to_owned(),
                framework: "ops".to_owned()
            }
        )
    );
    // A SUBSCRIBE proposed as the leader (access control was off when the API saw it) is a
    // client's: refused in enforce mode.
    assert_eq!(
        world.rejected(Actor::Leader, subscribe(&["dev"], None)),
        denied(
            None,
            "register_frameworks",
            Some("dev"),
            DenialReason::DeniedByRule { policy: "frameworks".to_owned(), rule: 1 }
        )
    );
    // A client can never pass for the leader's own loops.
    assert_eq!(
        world.rejected(client("root", Actor::Leader), Command::Tick),
        denied(None, "tick", None, DenialReason::ActingAsLeader)
    );
}

#[test]
fn framework_calls_need_the_frameworks_principal() {
    let mut world = enforcing();
    world.ok(
        operator("root"),
        Command::PutToken { token: token("ops", "ops", TokenKind::Client, "ops-secret") },
    );
    let mut info = framework_info("fw", &["dev"]);
    info.principal = Some("dev".to_owned());
    let events = world.ok(
        client("dev", Actor::Operator { principal: None }),
        Command::Subscribe { framework_id: None, info },
    );
    let Event::FrameworkAdded { framework_id, .. } = &events[0] else { panic!("{events:?}") };
    let revive = Command::Revive { framework_id: framework_id.clone(), roles: Vec::new() };
    world.ok(client("dev", Actor::Framework(framework_id.clone())), revive.clone());
    assert_eq!(
        world.rejected(client("ops", Actor::Framework(framework_id.clone())), revive.clone()),
        denied(
            Some("ops"),
            "revive",
            None,
            DenialReason::PrincipalMismatch {
                authenticated: "ops".to_owned(),
                framework: "dev".to_owned()
            }
        )
    );
    assert_eq!(
        world.rejected(Actor::Framework(framework_id.clone()), revive),
        denied(None, "revive", None, DenialReason::Anonymous)
    );
}

#[test]
fn app_rules_match_id_prefixes_by_path_segment() {
    let mut world = enforcing();
    world.ok(
        operator("root"),
        Command::PutPolicy {
            policy: policy(
                "apps",
                vec![(Action::DeleteApps, vec![rule(values(&["dev"]), values(&["/dev"]))])],
            ),
        },
    );
    let auth = world.state.auth();
    assert_eq!(auth.decide(Some("dev"), Action::DeleteApps, Some("/dev/web")), Ok(()));
    assert_eq!(auth.decide(Some("dev"), Action::DeleteApps, Some("/dev")), Ok(()));
    assert_eq!(
        auth.decide(Some("dev"), Action::DeleteApps, Some("/devops/web")),
        Err(Box::new(Denial {
            principal: Some("dev".to_owned()),
            action: "delete_apps".to_owned(),
            object: Some("/devops/web".to_owned()),
            reason: DenialReason::NoRuleAllows,
        }))
    );
    assert_eq!(auth.decide(Some("root"), Action::DeleteApps, Some("/devops/web")), Ok(()));
}

#[test]
fn an_agent_speaks_only_for_itself() {
    let mut world = enforcing();
    world.ok(
        operator("root"),
        Command::PutPolicy {
            policy: policy(
                "agents",
                vec![(Action::RegisterAgents, vec![rule(values(&["join"]), EntityMatch::Any)])],
            ),
        },
    );
    for (accessor, secret) in [("join-a", "a"), ("join-b", "b")] {
        world.ok(
            operator("root"),
            Command::PutToken { token: token(accessor, "join", TokenKind::Client, secret) },
        );
    }
    let info = AgentInfo {
        hostname: "host-a".to_owned(),
        address: "10.0.0.1:5051".to_owned(),
        attributes: Attributes::default(),
    };
    let register = Command::RegisterAgent { info: info.clone(), resources: res("cpus:2;mem:1024") };
    assert_eq!(
        world.rejected(Actor::Leader, register.clone()),
        denied(None, "register_agents", Some("host-a"), DenialReason::Anonymous)
    );
    let events = world.ok(client("join-a", Actor::Operator { principal: None }), register);
    let Event::AgentAdded { agent_id, .. } = &events[0] else { panic!("{events:?}") };
    assert_eq!(world.state.auth().agent_identity(agent_id), Some("join-a"));
    let heartbeat = Command::AgentHeartbeat { agent_id: agent_id.clone() };
    world.ok(client("join-a", Actor::Agent(agent_id.clone())), heartbeat.clone());
    assert_eq!(
        world.rejected(client("join-b", Actor::Agent(agent_id.clone())), heartbeat),
        denied(
            Some("join"),
            "agent_heartbeat",
            Some(agent_id.as_str()),
            DenialReason::NotTheAgent {
                agent_id: agent_id.to_string(),
                bound: "join-a".to_owned(),
                identity: "join-b".to_owned()
            }
        )
    );
}

#[test]
fn mesos_acl_json_reads_as_a_policy_and_names_a_bad_field() {
    let document = serde_json::json!({
        "permissive": false,
        "register_frameworks": [
            {"principals": {"values": ["marathon"]}, "roles": {"values": ["web", "db"]}},
            {"principals": {"type": "ANY"}, "roles": {"type": "NONE"}}
        ],
        "update_weights": [{"principals": {"type": "ANY"}, "roles": {"type": "ANY"}}]
    });
    let policy = Policy::from_mesos_json("mesos", &document).expect("a valid document");
    assert_eq!(
        policy,
        Policy {
            name: "mesos".to_owned(),
            permissive: false,
            rules: vec![
                (
                    Action::RegisterFrameworks,
                    vec![
                        rule(values(&["marathon"]), values(&["web", "db"])),
                        rule(EntityMatch::Any, EntityMatch::None)
                    ]
                ),
                (Action::UpdateWeights, vec![rule(EntityMatch::Any, EntityMatch::Any)]),
            ],
        }
    );
    assert_eq!(policy.to_mesos_json(), document);
    let error = Policy::from_mesos_json(
        "bad",
        &serde_json::json!({"run_tasks": [{"principals": {"type": "ANY"}, "roles": {"type": "ANY"}}]}),
    )
    .expect_err("run_tasks names users");
    assert_eq!(
        error.to_string(),
        "acls.run_tasks[0].roles: is not a key of run_tasks (principals, users)"
    );
    let error = Policy::from_mesos_json("bad", &serde_json::json!({"launch_rockets": []}))
        .expect_err("unknown action");
    assert_eq!(error.to_string(), "acls.launch_rockets: is not an action Corral knows");
}

#[test]
fn a_token_revoked_while_its_command_is_in_flight_is_refused_on_every_replica() {
    let mut world = enforcing();
    world.ok(
        operator("root"),
        Command::PutPolicy {
            policy: policy(
                "weights",
                vec![(Action::UpdateWeights, vec![rule(values(&["dev"]), EntityMatch::Any)])],
            ),
        },
    );
    let weights = Command::UpdateWeights { weights: vec![(role("eng"), Scalar::from_units(3))] };
    // The API checked the command against the state it read: allowed.
    let in_flight = world.entry(operator("dev"), weights);
    assert_eq!(world.state.check_client_command(&in_flight, Some("dev")), Ok(()));
    // The revocation reaches the log first.
    let revoke = world.entry(operator("root"), Command::RevokeToken { accessor: "dev".to_owned() });
    let mut replicas = [world.state.clone(), world.state.clone(), world.state.clone()];
    let outcomes: Vec<Outcome> = replicas
        .iter_mut()
        .map(|replica| {
            replica.apply(&revoke);
            replica.apply(&in_flight)
        })
        .collect();
    let expected = Outcome::Rejected(denied(
        None,
        "update_weights",
        None,
        DenialReason::UnknownIdentity("dev".to_owned()),
    ));
    assert!(outcomes.iter().all(|outcome| *outcome == expected), "{outcomes:?}");
    let digests: Vec<_> = replicas.iter().map(ClusterState::digest).collect();
    assert!(digests.windows(2).all(|pair| pair[0] == pair[1]));
    assert_eq!(replicas[0].role_configs().get(&role("eng")), None);
}

#[test]
fn snapshots_carry_hashes_and_older_snapshots_still_read() {
    let plain = World::new();
    let bytes = plain.state.snapshot().expect("encodes");
    assert_eq!(ClusterState::from_snapshot(&bytes).expect("decodes"), plain.state);

    let mut world = enforcing();
    world.ok(
        operator("root"),
        Command::PutCredential {
            credential: Credential {
                principal: "marathon".to_owned(),
                phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
            },
        },
    );
    let bytes = world.state.snapshot().expect("encodes");
    let restored = ClusterState::from_snapshot(&bytes).expect("decodes");
    assert_eq!(restored, world.state);
    assert_eq!(restored.digest(), world.state.digest());
    assert_ne!(restored.digest(), plain.state.digest());
    for secret in [ROOT_SECRET, "dev-secret"] {
        assert!(
            !bytes.windows(secret.len()).any(|window| window == secret.as_bytes()),
            "the secret {secret} is in the snapshot"
        );
    }
}

#[test]
fn secret_hashes_verify_only_their_secret() {
    let hash = SecretHash::of(ROOT_SECRET);
    assert!(hash.verifies(ROOT_SECRET));
    assert!(!hash.verifies("0f1e"));
    // Debug output shows four bytes, enough to tell hashes apart, never the whole hash.
    let shown: String = hash.0[..4].iter().map(|byte| format!("{byte:02x}")).collect();
    assert_eq!(format!("{hash:?}"), format!("SecretHash({shown}…)"));
}

// Property: for any policies, identities and commands, the API's early decision on a state
// is exactly the decision `apply` makes on that state in enforce mode.

fn entity(choice: u8) -> EntityMatch {
    match choice % 5 {
        0 => EntityMatch::Any,
        1 => EntityMatch::None,
        2 => values(&["dev"]),
        3 => values(&["eng", "ops"]),
        _ => values(&["ops", "dev", "eng"]),
    }
}

const ROLES: [&str; 3] = ["dev", "eng", "ops"];

proptest! {
    #[test]
    fn the_apis_decision_is_the_logs(
        rules in proptest::collection::vec((0u8..3, 0u8..5, 0u8..5, any::<bool>()), 0..6),
        identity in 0u8..5,
        command in 0u8..3,
        role_choice in 0u8..3,
    ) {
        let mut world = World::new();
        world.ok(
            Actor::Operator { principal: None },
            Command::BootstrapAcl { token: token("root", "root", TokenKind::Management, ROOT_SECRET) },
        );
        for (accessor, principal) in [("t-dev", "dev"), ("t-eng", "eng"), ("t-ops", "ops")] {
            world.ok(operator("root"), Command::PutToken { token: token(accessor, principal, TokenKind::Client, accessor) });
        }
        let actions = [Action::UpdateWeights, Action::RegisterFrameworks, Action::UpdateQuotas];
        for (action, principals, objects, second_policy) in &rules {
            let name = if *second_policy { "b" } else { "a" };
            let mut policy = world.state.auth().policy(name).cloned().unwrap_or_else(|| policy(name, Vec::new()));
            let action = actions[usize::from(*action)];
            match policy.rules.iter_mut().find(|(existing, _)| *existing == action) {
                Some((_, list)) => list.push(rule(entity(*principals), entity(*objects))),
                None => {
                    policy.rules.push((action, vec![rule(entity(*principals), entity(*objects))]));
                    policy.rules.sort_by_key(|(action, _)| *action);
                }
            }
            world.ok(operator("root"), Command::PutPolicy { policy });
        }
        world.ok(operator("root"), Command::SetAuthMode { mode: AuthMode::Enforce });
        let identity = ["root", "t-dev", "t-eng", "t-ops", "gone"].get(usize::from(identity)).copied();
        let role_name = ROLES[usize::from(role_choice)];
        let command = match command {
            0 => Command::UpdateWeights { weights: vec![(role(role_name), Scalar::from_units(2))] },
            1 => Command::Subscribe { framework_id: None, info: framework_info("fw", &[role_name]) },
            _ => Command::UpdateQuota { configs: Vec::new() },
        };
        let actor = match identity {
            Some(identity) => operator(identity),
            None => Actor::Operator { principal: None },
        };
        let entry = world.entry(actor, command);
        let early = world.state.check_client_command(&entry, identity);
        let mut state = world.state.clone();
        let outcome = state.apply(&entry);
        match early {
            Ok(()) => prop_assert!(!matches!(outcome, Outcome::Rejected(Rejection::Unauthorized(_))), "{:?}", outcome),
            Err(denial) => prop_assert_eq!(outcome, Outcome::Rejected(Rejection::Unauthorized(denial))),
        }
    }
}

#[test]
fn unknown_framework_ids_are_left_to_the_handler() {
    let mut world = enforcing();
    let rejection = world.rejected(
        client("dev", Actor::Framework(FrameworkId::new("nope"))),
        Command::Revive { framework_id: FrameworkId::new("nope"), roles: Vec::new() },
    );
    assert_eq!(rejection, Rejection::UnknownFramework(FrameworkId::new("nope")));
}

/// Mesos decides `run_tasks` per task: a refused task becomes TASK_ERROR with
/// REASON_TASK_UNAUTHORIZED from the master, the ACCEPT's other tasks launch, and a group
/// with one refused task is refused whole (REASON_TASK_GROUP_UNAUTHORIZED).
#[test]
fn a_task_the_principal_may_not_run_is_an_error_and_the_others_launch() {
    use corral_state::model::{
        CommandInfo, ExecutorInfo, Filters, TaskReason, TaskSource, TaskState, TaskStatus,
    };
    use corral_state::{ExecutorId, Operation, TaskId};
    use std::time::Duration;

    use super::support::task_info;

    let mut world = World::new();
    let agent_id = world.add_agent("h1", "cpus:8;mem:4096");
    let mut world = enforcing_in(world);
    world.ok(
        operator("root"),
        Command::PutPolicy {
            policy: policy(
                "tasks",
                vec![(
                    Action::RunTasks,
                    vec![
                        rule(values(&["dev"]), values(&["root"])),
                        rule(EntityMatch::Any, EntityMatch::None),
                    ],
                )],
            ),
        },
    );
    let mut info = framework_info("fw", &["dev"]);
    info.principal = Some("dev".to_owned());
    let events = world.ok(
        client("dev", Actor::Operator { principal: None }),
        Command::Subscribe { framework_id: None, info },
    );
    let Event::FrameworkAdded { framework_id, .. } = &events[0] else { panic!("{events:?}") };
    let offer_id = world.offer(framework_id, &agent_id, "dev", "cpus:4;mem:1024");

    let as_user = |task_id: &str, user: Option<&str>| {
        let mut task = task_info(task_id, &agent_id, "cpus:0.5;mem:64");
        task.command = Some(CommandInfo {
            value: Some("sleep 600".to_owned()),
            user: user.map(str::to_owned),
            ..CommandInfo::default()
        });
        task
    };
    let executor = ExecutorInfo {
        executor_id: ExecutorId::new("group-executor"),
        name: None,
        command: None,
        container: None,
        resources: res("cpus:0.1;mem:32"),
    };
    let accept = Command::Accept {
        framework_id: framework_id.clone(),
        offer_ids: vec![offer_id.clone()],
        operations: vec![
            Operation::Launch {
                task_infos: vec![as_user("mine", None), as_user("theirs", Some("nobody"))],
            },
            Operation::LaunchGroup {
                executor: Box::new(executor),
                task_infos: vec![
                    as_user("group-a", Some("root")),
                    as_user("group-b", Some("nobody")),
                ],
            },
        ],
        filters: Filters { refuse: Duration::ZERO },
    };
    // What the API counts in permissive mode: the first task that would be refused.
    let denial =
        "principal 'dev' may not run_tasks on 'nobody': rule 1 of policy 'tasks' denies it";
    let entry = world.entry(client("dev", Actor::Framework(framework_id.clone())), accept.clone());
    let first = world.state.check_run_tasks(&entry).map(|denial| denial.to_string());
    assert_eq!(first.as_deref(), Some(denial));
    let events = world.ok(client("dev", Actor::Framework(framework_id.clone())), accept);

    let refused = |task_id: &str, reason: TaskReason, message: String| Event::TaskDropped {
        framework_id: framework_id.clone(),
        status: TaskStatus {
            task_id: TaskId::new(task_id),
            state: TaskState::Error,
            message: Some(message),
            source: TaskSource::Master,
            reason: Some(reason),
            healthy: None,
            agent_id: Some(agent_id.clone()),
            executor_id: None,
            timestamp: world.state.now(),
            uuid: None,
            exit_code: None,
        },
    };
    let Event::TaskAdded { task } = &events[1] else { panic!("{events:#?}") };
    assert_eq!(task.info.task_id, TaskId::new("mine"));
    assert_eq!(
        events,
        vec![
            Event::OfferAccepted {
                offer_id,
                framework_id: framework_id.clone(),
                agent_id: agent_id.clone(),
            },
            Event::TaskAdded { task: task.clone() },
            refused(
                "theirs",
                TaskReason::TaskUnauthorized,
                format!("Not authorized to launch task: {denial}")
            ),
            refused(
                "group-a",
                TaskReason::TaskGroupUnauthorized,
                format!("Not authorized to launch task group: {denial}")
            ),
            refused(
                "group-b",
                TaskReason::TaskGroupUnauthorized,
                format!("Not authorized to launch task group: {denial}")
            ),
        ],
    );
    assert_eq!(TaskReason::TaskUnauthorized.as_mesos_str(), "REASON_TASK_UNAUTHORIZED");
    assert_eq!(TaskReason::TaskGroupUnauthorized.as_mesos_str(), "REASON_TASK_GROUP_UNAUTHORIZED");
    // Only the allowed task holds resources; the API's early check lets the ACCEPT through.
    assert_eq!(world.state.agent(&agent_id).expect("the agent").allocated, res("cpus:0.5;mem:64"));
}
