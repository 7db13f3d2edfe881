//! Audit and time travel on a running log: the history of a task from the entity index, the
//! state at any index from checkpoints, diffs, the command trail, and the hash chain every
//! master computes alike.

use std::time::Duration;

use corral_log::{
    ActorFilter, AuditError, ChainHead, CheckpointPolicy, Committed, JournalRetention, LogNode,
    TrailFilter,
};
use corral_state::model::{
    AgentInfo, Attributes, Filters, FrameworkInfo, TaskInfo, TaskSource, TaskState, TaskStatus,
};
use corral_state::{
    Actor, AgentId, Change, Command, Cursor, Entity, EntityKind, Event, FrameworkId, OfferSpec,
    Operation, Rejection, RequestId, Role, TaskId, UpdateUuid, Verdict,
};

use super::support::{eventually, test_tuning, TestCluster};

struct Scenario {
    agent_id: AgentId,
    framework_id: FrameworkId,
    /// Index of each step, by name.
    steps: Vec<(&'static str, u64)>,
    next_request: u64,
}

impl Scenario {
    fn index(&self, step: &str) -> u64 {
        self.steps.iter().find(|(name, _)| *name == step).map(|(_, index)| *index).unwrap()
    }
}

async fn propose(
    node: &LogNode,
    scenario: &mut Scenario,
    step: &'static str,
    actor: Actor,
    command: Command,
) -> Committed {
    scenario.next_request += 1;
    let request_id = RequestId::new(format!("audit-{}", scenario.next_request));
    let committed = node.propose(request_id, actor, command).await.expect("proposal committed");
    scenario.steps.push((step, committed.index));
    committed
}

fn task_info(agent_id: &AgentId) -> TaskInfo {
    TaskInfo::shell(
        TaskId::new("t1"),
        agent_id.clone(),
        "cpus:1;mem:64".parse().unwrap(),
        "sleep 60",
    )
}

fn status(agent_id: &AgentId, state: TaskState, uuid: &str) -> TaskStatus {
    TaskStatus {
        task_id: TaskId::new("t1"),
        state,
        message: None,
        source: TaskSource::Executor,
        reason: None,
        healthy: None,
        agent_id: Some(agent_id.clone()),
        executor_id: None,
        timestamp: corral_state::Timestamp::default(),
        uuid: Some(UpdateUuid::new(uuid)),
        exit_code: None,
    }
}

/// An agent, a framework, task t1 launched and running, a refused kill of an unknown task,
/// then t1 killed.
async fn run_scenario(node: &LogNode) -> Scenario {
    let mut scenario = Scenario {
        agent_id: AgentId::new(""),
        framework_id: FrameworkId::new(""),
        steps: Vec::new(),
        next_request: 0,
    };
    let info = AgentInfo {
        hostname: "host-a".to_owned(),
        address: "10.0.0.1:5051".to_owned(),
        attributes: Attributes::default(),
    };
    let resources = "cpus:4;mem:1024".parse().unwrap();
    let committed = propose(
        node,
        &mut scenario,
        "register",
        Actor::Leader,
        Command::RegisterAgent { info, resources },
    )
    .await;
    let [Event::AgentAdded { agent_id, .. }] = committed.outcome.events() else { panic!() };
    scenario.agent_id = agent_id.clone();
    let info = FrameworkInfo {
        user: "root".to_owned(),
        name: "batch".to_owned(),
        roles: vec![Role::default_role()],
        failover_timeout: Duration::from_secs(60),
        checkpoint: true,
        hostname: None,
        principal: None,
        webui_url: None,
        capabilities: Default::default(),
        labels: Vec::new(),
    };
    let committed = propose(
        node,
        &mut scenario,
        "subscribe",
        Actor::Leader,
        Command::Subscribe { framework_id: None, info },
    )
    .await;
    let [Event::FrameworkAdded { framework_id, .. }] = committed.outcome.events() else { panic!() };
    scenario.framework_id = framework_id.clone();
    let (agent_id, framework_id) = (scenario.agent_id.clone(), scenario.framework_id.clone());
    let offer = OfferSpec {
        framework_id: framework_id.clone(),
        agent_id: agent_id.clone(),
        role: Role::default_role(),
        resources: "cpus:4;mem:1024".parse().unwrap(),
    };
    let committed = propose(
        node,
        &mut scenario,
        "offer",
        Actor::Leader,
        Command::OfferResources { offers: vec![offer] },
    )
    .await;
    let [Event::OfferCreated { offer }] = committed.outcome.events() else { panic!() };
    let accept = Command::Accept {
        framework_id: framework_id.clone(),
        offer_ids: vec![offer.id.clone()],
        operations: vec![Operation::Launch { task_infos: vec![task_info(&agent_id)] }],
        filters: Filters::default(),
    };
    propose(node, &mut scenario, "accept", Actor::Framework(framework_id.clone()), accept).await;
    let running = Command::UpdateStatus {
        framework_id: framework_id.clone(),
        status: status(&agent_id, TaskState::Running, "u1"),
    };
    propose(node, &mut scenario, "running", Actor::Agent(agent_id.clone()), running).await;
    let kill = |task: &str| Command::Kill {
        framework_id: framework_id.clone(),
        task_id: TaskId::new(task),
        agent_id: None,
        kill_policy: None,
    };
    let actor = Actor::Framework(framework_id.clone());
    propose(node, &mut scenario, "kill ghost", actor.clone(), kill("ghost")).await;
    propose(node, &mut scenario, "kill", actor, kill("t1")).await;
    let killed = Command::UpdateStatus {
        framework_id: framework_id.clone(),
        status: status(&agent_id, TaskState::Killed, "u2"),
    };
    propose(node, &mut scenario, "killed", Actor::Agent(agent_id.clone()), killed).await;
    scenario
}

fn t1() -> Entity {
    Entity::new(EntityKind::Task, "t1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tasks_history_names_every_command_its_sender_verdict_and_events() {
    let cluster = TestCluster::start(1).await;
    let node = cluster.node(cluster.leader().await).clone();
    let scenario = run_scenario(&node).await;
    let history = node.journal().history(&t1(), 0..=u64::MAX, 100).unwrap();
    let summary: Vec<(u64, &str, &str, Vec<&str>)> = history
        .iter()
        .map(|record| {
            (
                record.cursor.index,
                record.entry.command.kind(),
                record.verdict.as_str(),
                record.events.iter().map(|(_, event)| event.kind()).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (scenario.index("accept"), "accept", "accepted", vec!["task_added"]),
            (scenario.index("running"), "update_status", "accepted", vec!["task_updated"]),
            (scenario.index("kill"), "kill", "accepted", vec!["task_kill_requested"]),
            (scenario.index("killed"), "update_status", "accepted", vec!["task_updated"]),
        ]
    );
    assert_eq!(history[2].entry.actor, Actor::Framework(scenario.framework_id.clone()));
    // Each event's cursor is the one streams deliver it with.
    let (cursor, _) = &history[0].events[0];
    assert_eq!(cursor.index, scenario.index("accept"));

    let ghost =
        node.journal().history(&Entity::new(EntityKind::Task, "ghost"), 0..=u64::MAX, 100).unwrap();
    assert_eq!(ghost.len(), 1);
    assert_eq!(
        ghost[0].verdict,
        Verdict::Rejected(Rejection::UnknownTask {
            framework_id: scenario.framework_id.clone(),
            task_id: TaskId::new("ghost"),
        })
    );
    // A range limits the history; a limit cuts it.
    let kill = scenario.index("kill");
    let late = node.journal().history(&t1(), kill..=u64::MAX, 100).unwrap();
    assert_eq!(late.len(), 2);
    assert_eq!(node.journal().history(&t1(), 0..=u64::MAX, 1).unwrap().len(), 1);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_at_any_index_is_the_state_the_master_had_then() {
    let cluster = TestCluster::start(1).await;
    let node = cluster.node(cluster.leader().await).clone();
    // Checkpoints every two commands, so some answers start from one and some replay.
    node.journal().set_checkpoint_policy(CheckpointPolicy::EveryCommands(2));
    let mut digests = Vec::new();
    let mut scenario_node_digest = |node: &LogNode| digests.push(node.applied_digest());
    scenario_node_digest(&node);
    let scenario = run_scenario(&node).await;
    scenario_node_digest(&node);
    let (last, live) = *digests.last().unwrap();
    assert_eq!(node.state_at(last).await.unwrap().digest(), live);
    // The task as it stood right after the kill was asked, and after it ended.
    let killing = node.state_at(scenario.index("kill")).await.unwrap();
    let task = killing.task(&scenario.framework_id, &TaskId::new("t1")).unwrap();
    assert_eq!((task.state, task.kill_requested.is_some()), (TaskState::Running, true));
    let killed = node.state_at(scenario.index("killed")).await.unwrap();
    let task = killed.task(&scenario.framework_id, &TaskId::new("t1")).unwrap();
    assert_eq!(task.state, TaskState::Killed);
    // Every index agrees with a replay from the very start.
    for index in 0..=last {
        let mut replayed = corral_state::ClusterState::default();
        if index > 0 {
            node.journal().replay(&mut replayed, 0..=index).unwrap();
        }
        let rebuilt = node.state_at(index).await.unwrap();
        assert_eq!(rebuilt.digest(), replayed.digest(), "at index {index}");
    }
    match node.state_at(last + 5).await {
        Err(AuditError::Beyond { asked, last: applied }) => {
            assert_eq!((asked, applied), (last + 5, last))
        }
        other => panic!("expected Beyond, got {other:?}"),
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diff_names_each_change_and_the_index_that_made_it() {
    let cluster = TestCluster::start(1).await;
    let node = cluster.node(cluster.leader().await).clone();
    let scenario = run_scenario(&node).await;
    let records = node.diff(scenario.index("offer"), scenario.index("killed")).await.unwrap();
    let summary: Vec<(EntityKind, &str, Change, u64)> = records
        .iter()
        .map(|record| {
            (
                record.change.entity.kind,
                record.change.entity.id.as_str(),
                record.change.change,
                record.index,
            )
        })
        .collect();
    assert_eq!(summary, vec![(EntityKind::Task, "t1", Change::Added, scenario.index("killed"))]);
    match node.diff(5, 3).await {
        Err(AuditError::Invalid { parameter, .. }) => assert_eq!(parameter, "to"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_streams_commands_with_their_verdicts_and_filters() {
    let cluster = TestCluster::start(1).await;
    let node = cluster.node(cluster.leader().await).clone();
    let scenario = run_scenario(&node).await;
    let journal = node.journal();
    let all: Vec<_> =
        journal.trail(0..=u64::MAX, TrailFilter::default()).unwrap().map(Result::unwrap).collect();
    let kinds: Vec<&str> = all.iter().map(|record| record.entry.command.kind()).collect();
    assert_eq!(
        kinds,
        vec![
            "register_agent",
            "subscribe",
            "offer_resources",
            "accept",
            "update_status",
            "kill",
            "kill",
            "update_status"
        ]
    );
    let rejected = TrailFilter { outcome: Some("rejected".to_owned()), ..TrailFilter::default() };
    let refused: Vec<_> =
        journal.trail(0..=u64::MAX, rejected).unwrap().map(Result::unwrap).collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].cursor.index, scenario.index("kill ghost"));
    let by_agent = TrailFilter {
        actor: Some(ActorFilter::Is(Entity::agent(&scenario.agent_id))),
        ..TrailFilter::default()
    };
    assert_eq!(journal.trail(0..=u64::MAX, by_agent).unwrap().count(), 2);
    let by_leader = TrailFilter { actor: Some(ActorFilter::Leader), ..TrailFilter::default() };
    assert_eq!(journal.trail(0..=u64::MAX, by_leader).unwrap().count(), 3);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_at_a_time_is_the_last_entry_stamped_by_then() {
    let cluster = TestCluster::start(1).await;
    let node = cluster.node(cluster.leader().await).clone();
    run_scenario(&node).await;
    let journal = node.journal();
    let rows: Vec<(u64, corral_state::Timestamp)> = journal
        .commands(0..=u64::MAX)
        .map(|row| row.map(|(index, at, _)| (index, at)).unwrap())
        .collect();
    for (index, at) in &rows {
        assert_eq!(journal.index_at(*at).unwrap(), *index);
    }
    let (first, first_at) = rows[0];
    match journal.index_at(corral_state::Timestamp(first_at.0 - 1)) {
        Err(AuditError::TooOld { oldest, .. }) => assert_eq!(oldest, Cursor::new(first, 0)),
        other => panic!("expected TooOld, got {other:?}"),
    }
    let last = rows.last().unwrap().0;
    assert_eq!(journal.index_at(corral_state::Timestamp(u64::MAX)).unwrap(), last);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_master_computes_the_same_chain_and_an_altered_row_is_named() {
    let cluster = TestCluster::start(3).await;
    let leader = cluster.leader().await;
    let node = cluster.node(leader).clone();
    let scenario = run_scenario(&node).await;
    cluster.converged(&[1, 2, 3]).await;
    let heads: Vec<ChainHead> = (1..=3).map(|id| cluster.node(id).chain_head()).collect();
    assert!(heads.windows(2).all(|pair| pair[0] == pair[1]), "{heads:?}");
    assert_eq!(node.journal().verify_chain().unwrap(), Ok(heads[0]));
    assert_ne!(heads[0], ChainHead::GENESIS);

    // Stop the masters, change one byte of one journal row with sled, and verify.
    cluster.shutdown().await;
    drop(node);
    let TestCluster { nodes, network, directories, .. } = cluster;
    drop((nodes, network));
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let directory = directories[&follower].path().to_owned();
    let altered = scenario.index("kill");
    {
        // The stopped master's threads let go of the database as they wind down.
        let db = eventually("the stopped master to release its data directory", || async {
            sled::open(&directory).ok()
        })
        .await;
        let journal = db.open_tree("journal").unwrap();
        let mut row = journal.get(altered.to_be_bytes()).unwrap().unwrap().to_vec();
        let last = row.len() - 1;
        row[last] ^= 1;
        journal.insert(altered.to_be_bytes(), row).unwrap();
        db.flush().unwrap();
    }
    let (_, state_machine) = corral_log::store::open(
        &directory,
        corral_log::store::InitialSettings::Recorded,
        JournalRetention::KEEP_ALL,
    )
    .unwrap();
    assert_eq!(state_machine.journal().verify_chain().unwrap(), Err(altered));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_older_than_the_journal_keeps_is_refused_naming_the_oldest_cursor() {
    let cluster = TestCluster::start_with(1, test_tuning(), |config| {
        config.retention = JournalRetention { max_age: None, max_indexes: Some(3) };
    })
    .await;
    let node = cluster.node(cluster.leader().await).clone();
    node.journal().set_checkpoint_policy(CheckpointPolicy::EveryCommands(1));
    let scenario = run_scenario(&node).await;
    let (first, _) = node.journal().bounds().unwrap().unwrap();
    match node.journal().history(&t1(), 0..=u64::MAX, 10) {
        Err(AuditError::TooOld { oldest, .. }) => assert_eq!(oldest, Cursor::new(first, 0)),
        other => panic!("expected TooOld, got {other:?}"),
    }
    let recent = node.journal().history(&t1(), first..=u64::MAX, 10).unwrap();
    assert_eq!(recent.last().unwrap().cursor.index, scenario.index("killed"));
    match node.state_at(scenario.index("register")).await {
        Err(AuditError::TooOld { .. }) => {}
        other => panic!("expected TooOld, got {other:?}"),
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_that_joins_from_a_snapshot_continues_the_same_chain() {
    let tuning = corral_log::LogTuning {
        snapshot_every_entries: 10,
        entries_kept_after_snapshot: 0,
        purge_batch_size: 1,
        ..test_tuning()
    };
    let mut cluster = TestCluster::start_with(3, tuning, |_| {}).await;
    for number in 0..30 {
        cluster.propose(number).await;
    }
    let leader = cluster.leader().await;
    eventually("the leader to snapshot and purge its log", || async {
        cluster.node(leader).status().purged_index.filter(|purged| *purged > 0)
    })
    .await;
    let config = cluster.config(4);
    let newcomer = cluster.open(config).await;
    cluster.node(leader).add_member(4, super::support::address_of(4)).await.unwrap();
    eventually("the new master to install a snapshot", || async {
        newcomer.journal().lost_through().map(drop)
    })
    .await;
    for number in 30..40 {
        cluster.propose(number).await;
    }
    cluster.converged(&[1, 2, 3, 4]).await;
    let leader_head = cluster.node(leader).chain_head();
    assert_eq!(newcomer.chain_head(), leader_head);
    // Its own journal verifies from the snapshot's link on.
    assert_eq!(newcomer.journal().verify_chain().unwrap(), Ok(leader_head));
    cluster.shutdown().await;
}
