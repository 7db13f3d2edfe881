//! The audit benchmark: a journal of `CORRAL_BENCH_AUDIT_COMMANDS` commands (default
//! 1,000,000; one command per Raft entry, the worst case for per-row costs) holding 100,000
//! tasks, applied through the real state machine into real sled trees (no network, no
//! fsync: this measures the journal, not Raft). Then: the history of one task, the state at
//! a random index, a diff across 10,000 entries, exporting the command trail, verifying the
//! chain, and what the audit trees cost on disk.
//!
//! ```text
//! CORRAL_BENCH_ONLY=audit cargo bench -p corral-log --bench log
//! ```
//!
//! `CORRAL_BENCH_CHECKPOINT_EVERY` overrides the checkpoint interval (commands).

use std::time::{Duration, Instant};

use corral_log::store::{self, InitialSettings, StateMachineStore};
use corral_log::{Batch, CheckpointPolicy, JournalRetention, RecordJson, TrailFilter};
use corral_state::model::{
    AgentInfo, Attributes, Filters, FrameworkInfo, Settings, TaskInfo, TaskSource, TaskState,
    TaskStatus,
};
use corral_state::{
    Actor, AgentId, Command, Entity, EntityKind, Event, FrameworkId, OfferSpec, Operation, Outcome,
    RequestId, Role, TaskId, Timestamp, UpdateUuid,
};
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload, LogId};

const AGENTS: u64 = 1_000;
const FRAMEWORKS: u64 = 10;
const TASKS: u64 = 100_000;
const OFFERS_PER_ENTRY: u64 = 100;

struct Writer {
    machine: StateMachineStore,
    index: u64,
    request: u64,
    clock: Timestamp,
}

impl Writer {
    async fn apply(&mut self, commands: Vec<(Actor, Command)>) -> Vec<Outcome> {
        self.index += 1;
        self.clock = Timestamp(self.clock.0 + 1_000_000);
        let entries = commands
            .into_iter()
            .map(|(actor, command)| {
                self.request += 1;
                corral_state::Entry {
                    request_id: RequestId::new(format!("b{}", self.request)),
                    actor,
                    at: self.clock,
                    command,
                }
            })
            .collect();
        let entry = openraft::Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), self.index),
            payload: EntryPayload::Normal(Batch::encode(entries).expect("encodes")),
        };
        let mut responses = self.machine.apply(vec![entry]).await.expect("applies");
        responses.pop().expect("one response").outcomes
    }
}

fn task_info(task: u64, agent_id: &AgentId) -> TaskInfo {
    TaskInfo::shell(
        TaskId::new(format!("task-{task}")),
        agent_id.clone(),
        "cpus:0.01;mem:1".parse().expect("resources"),
        "sleep 3600",
    )
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A deterministic spread of sample points (no randomness needed for a fair median).
fn spread(count: u64, low: u64, high: u64) -> Vec<u64> {
    (0..count).map(|i| low + (high - low) * (2 * i + 1) / (2 * count)).collect()
}

fn directory_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .expect("read dir")
        .map(|entry| {
            let entry = entry.expect("entry");
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                directory_bytes(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

async fn build(writer: &mut Writer, target: u64) -> Vec<(FrameworkId, AgentId, TaskId)> {
    let mut agents = Vec::new();
    for number in 0..AGENTS {
        let info = AgentInfo {
            hostname: format!("agent-{number}"),
            address: format!("10.0.{}.{}:5051", number / 256, number % 256),
            attributes: Attributes::default(),
        };
        let resources = "cpus:100000;mem:100000000".parse().expect("resources");
        let outcomes =
            writer.apply(vec![(Actor::Leader, Command::RegisterAgent { info, resources })]).await;
        let [Event::AgentAdded { agent_id, .. }] = outcomes[0].events() else { panic!() };
        agents.push(agent_id.clone());
    }
    let mut frameworks = Vec::new();
    for number in 0..FRAMEWORKS {
        let info = FrameworkInfo {
            user: "root".to_owned(),
            name: format!("framework-{number}"),
            roles: vec![Role::default_role()],
            failover_timeout: Duration::from_secs(3600 * 24 * 365),
            checkpoint: true,
            hostname: None,
            principal: None,
            webui_url: None,
            capabilities: Default::default(),
            labels: Vec::new(),
        };
        let command = Command::Subscribe { framework_id: None, info };
        let outcomes = writer.apply(vec![(Actor::Leader, command)]).await;
        let [Event::FrameworkAdded { framework_id, .. }] = outcomes[0].events() else { panic!() };
        frameworks.push(framework_id.clone());
    }
    let mut tasks = Vec::new();
    for first in (0..TASKS).step_by(OFFERS_PER_ENTRY as usize) {
        let specs: Vec<OfferSpec> = (first..first + OFFERS_PER_ENTRY)
            .map(|task| OfferSpec {
                framework_id: frameworks[(task % FRAMEWORKS) as usize].clone(),
                agent_id: agents[(task % AGENTS) as usize].clone(),
                role: Role::default_role(),
                resources: "cpus:0.01;mem:1".parse().expect("resources"),
            })
            .collect();
        let outcomes =
            writer.apply(vec![(Actor::Leader, Command::OfferResources { offers: specs })]).await;
        let offers: Vec<_> = outcomes[0]
            .events()
            .iter()
            .filter_map(|event| match event {
                Event::OfferCreated { offer } => Some(offer.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(offers.len() as u64, OFFERS_PER_ENTRY, "offers created");
        for (task, offer) in (first..).zip(offers) {
            let accept = Command::Accept {
                framework_id: offer.framework_id.clone(),
                offer_ids: vec![offer.id.clone()],
                operations: vec![Operation::Launch {
                    task_infos: vec![task_info(task, &offer.agent_id)],
                }],
                filters: Filters::default(),
            };
            let outcomes =
                writer.apply(vec![(Actor::Framework(offer.framework_id.clone()), accept)]).await;
            assert!(!outcomes[0].is_rejected(), "{:?}", outcomes[0]);
            tasks.push((
                offer.framework_id.clone(),
                offer.agent_id.clone(),
                TaskId::new(format!("task-{task}")),
            ));
        }
    }
    for (number, (framework_id, agent_id, task_id)) in tasks.iter().enumerate() {
        let status = TaskStatus {
            task_id: task_id.clone(),
            state: TaskState::Running,
            message: None,
            source: TaskSource::Executor,
            reason: None,
            healthy: None,
            agent_id: Some(agent_id.clone()),
            executor_id: None,
            timestamp: writer.clock,
            uuid: Some(UpdateUuid::new(format!("u{number}"))),
            exit_code: None,
        };
        let command = Command::UpdateStatus { framework_id: framework_id.clone(), status };
        writer.apply(vec![(Actor::Agent(agent_id.clone()), command)]).await;
    }
    let mut heartbeat = 0u64;
    while writer.request < target {
        let agent_id = agents[(heartbeat % AGENTS) as usize].clone();
        heartbeat += 1;
        let command = Command::AgentHeartbeat { agent_id: agent_id.clone() };
        writer.apply(vec![(Actor::Agent(agent_id), command)]).await;
    }
    tasks
}

pub(crate) async fn benchmark() {
    let target = super::env_number("CORRAL_BENCH_AUDIT_COMMANDS", 1_000_000);
    let base = match std::env::var("CORRAL_BENCH_DIR") {
        Ok(directory) => tempfile::tempdir_in(directory),
        Err(_) => tempfile::tempdir(),
    }
    .expect("bench directory");
    let settings = Settings { cluster_id: "bench".to_owned(), ..Settings::default() };
    let (_log, machine) =
        store::open(base.path(), InitialSettings::Given(settings), JournalRetention::KEEP_ALL)
            .expect("open stores");
    let policy = match std::env::var("CORRAL_BENCH_CHECKPOINT_EVERY") {
        Ok(every) => CheckpointPolicy::EveryCommands(every.parse().expect("a number")),
        Err(_) => CheckpointPolicy::DEFAULT,
    };
    machine.journal().set_checkpoint_policy(policy);
    let mut writer =
        Writer { machine: machine.clone(), index: 0, request: 0, clock: Timestamp::from_secs(1) };
    let started = Instant::now();
    let tasks = build(&mut writer, target).await;
    let built = started.elapsed();
    println!(
        "audit: journaled {} commands ({} entries, {} tasks) in {:.1} s = {:.0} commands/s, checkpoints {policy:?}",
        writer.request,
        writer.index,
        tasks.len(),
        built.as_secs_f64(),
        writer.request as f64 / built.as_secs_f64()
    );
    let journal = machine.journal().clone();
    let last = writer.index;
    // The reads are timed on a quiet journal: journaling leaves sled's IO threads writing
    // out what it wrote for seconds (tens of seconds at 1,000,000 commands) and the
    // checkpoint thread encoding the last state, and a read timed meanwhile measures them.
    let start = Instant::now();
    journal.settle().expect("settle");
    println!(
        "audit: settled (checkpoints written, sled flushed) in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let mut samples = Vec::new();
    let mut records = 0;
    for pick in spread(50, 0, tasks.len() as u64) {
        let task = Entity::new(EntityKind::Task, tasks[pick as usize].2.as_str());
        let start = Instant::now();
        records += journal.history(&task, 0..=last, 10_000).expect("history").len();
        samples.push(start.elapsed());
    }
    println!(
        "audit: history of one task: median {:.2} ms ({} records per task)",
        median(samples).as_secs_f64() * 1e3,
        records / 50
    );

    let initial = machine.initial_state();
    let mut samples = Vec::new();
    for index in spread(7, 1, last) {
        let start = Instant::now();
        let state = journal.state_at(index, initial.clone()).expect("state_at");
        samples.push(start.elapsed());
        std::hint::black_box(state);
    }
    println!(
        "audit: state at a random index: median {:.0} ms",
        median(samples).as_secs_f64() * 1e3
    );

    // The diff from the fingerprints the entity index keeps, and the same diff from two
    // rebuilt states (what it was before them): they must agree.
    let mut samples = Vec::new();
    let mut by_replay = Vec::new();
    let mut changed = 0;
    for from in spread(5, 1, last - 10_000) {
        let start = Instant::now();
        let changes = journal.diff(from, from + 10_000, initial.clone()).expect("diff");
        samples.push(start.elapsed());
        let start = Instant::now();
        let replayed =
            journal.diff_by_replay(from, from + 10_000, initial.clone()).expect("replayed diff");
        by_replay.push(start.elapsed());
        assert_eq!(changes, replayed, "the diffs from {from} disagree");
        changed += changes.len();
    }
    println!(
        "audit: diff across 10,000 entries: median {:.0} ms from fingerprints, {:.0} ms from rebuilt states (the same {} changes per diff)",
        median(samples).as_secs_f64() * 1e3,
        median(by_replay).as_secs_f64() * 1e3,
        changed / 5
    );

    let start = Instant::now();
    let read = journal.trail(0..=last, TrailFilter::default()).expect("trail").count();
    let reading = start.elapsed();
    println!(
        "audit: read the trail (decoded, with verdicts): {read} commands in {:.2} s = {:.0} commands/s",
        reading.as_secs_f64(),
        read as f64 / reading.as_secs_f64()
    );

    let start = Instant::now();
    let mut exported = 0u64;
    let mut bytes = 0usize;
    for record in journal.trail(0..=last, TrailFilter::default()).expect("trail") {
        let record = record.expect("record");
        bytes += serde_json::to_vec(&record.entry).expect("json").len();
        exported += 1;
    }
    let export = start.elapsed();
    println!(
        "audit: exported the trail's entries (serde_json of each entry alone): {exported} commands ({} MB of JSON) in {:.2} s = {:.0} commands/s",
        bytes / 1_000_000,
        export.as_secs_f64(),
        exported as f64 / export.as_secs_f64()
    );

    // The export as `/corral/v1/commands` streams it: one NDJSON line per command (actor,
    // verdict, time, the command), gathered into 64 KiB chunks. First through a
    // `serde_json::Value` per command (as the API did at first), then serialized straight into
    // the chunk by `RecordJson`'s `Serialize` (as it did next), then by
    // `RecordJson::write_line` (as it does now).
    enum How {
        Value,
        Serialize,
        WriteLine,
    }
    for (how, written) in [
        ("through a Value per command", How::Value),
        ("serialized straight", How::Serialize),
        ("written by write_line (the API)", How::WriteLine),
    ] {
        let start = Instant::now();
        let mut exported = 0u64;
        let mut bytes = 0usize;
        let mut chunk: Vec<u8> = Vec::with_capacity(80 * 1024);
        for record in journal.trail(0..=last, TrailFilter::default()).expect("trail") {
            let record = record.expect("record");
            match written {
                How::Value => {
                    let value = serde_json::to_value(RecordJson(&record)).expect("json");
                    chunk.extend_from_slice(value.to_string().as_bytes());
                }
                How::Serialize => {
                    serde_json::to_writer(&mut chunk, &RecordJson(&record)).expect("json")
                }
                How::WriteLine => RecordJson(&record).write_line(&mut chunk).expect("json"),
            }
            chunk.push(b'\n');
            if chunk.len() >= 64 * 1024 {
                bytes += chunk.len();
                std::hint::black_box(&chunk);
                chunk.clear();
            }
            exported += 1;
        }
        bytes += chunk.len();
        let export = start.elapsed();
        println!(
            "audit: exported the trail as NDJSON lines {how}: {exported} commands ({} MB) in {:.2} s = {:.0} commands/s",
            bytes / 1_000_000,
            export.as_secs_f64(),
            exported as f64 / export.as_secs_f64()
        );
    }

    let start = Instant::now();
    let verified = journal.verify_chain().expect("verify");
    println!(
        "audit: verified the chain of {last} rows in {:.2} s: {:?}",
        start.elapsed().as_secs_f64(),
        verified.map(|head| head.index)
    );

    let footprint = journal.audit_footprint().expect("footprint");
    let per_million = 1_000_000.0 / writer.request as f64;
    let mb = |bytes: u64| bytes as f64 * per_million / 1e6;
    println!(
        "audit: per million commands: entity index with fingerprints {:.0} MB ({:.0} keys), chain {:.0} MB, verdicts {:.0} MB, checkpoints {:.0} MB ({} of them); whole data directory {:.0} MB",
        mb(footprint.index_bytes),
        footprint.index_keys as f64 * per_million,
        mb(footprint.chain_bytes),
        mb(footprint.verdict_bytes),
        mb(footprint.checkpoint_bytes),
        footprint.checkpoints,
        mb(directory_bytes(base.path()))
    );
    let snapshot = machine.read().state.snapshot().expect("snapshot").len();
    println!(
        "audit: one checkpoint (the state with {} tasks) is {:.0} MB",
        tasks.len(),
        snapshot as f64 / 1e6
    );
}
