//! One campaign: start the cluster, run the workloads while the nemesis injects faults, heal,
//! converge, stop, and check everything recorded against the masters' journals.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::check::{self, Violation};
use crate::client::{self, send, Reply};
use crate::cluster::{Cluster, MasterView};
use crate::history::{jepsen_events, Clock, History};
use crate::journal::{self, JournalFacts};
use crate::monitor::Monitor;
use crate::nemesis::{FaultKind, FaultRecord, Nemesis, AGENT_TIMEOUT};
use crate::netns::{self, Net};
use crate::report::{self, Counts, FaultSummary};
use crate::rng::Rng;
use crate::workload::{self, Redirects, Shared, SET_PREFIX};

pub struct Options {
    pub masters: usize,
    pub agents: usize,
    pub seconds: u64,
    pub seed: u64,
    pub faults: Vec<FaultKind>,
    pub corral: PathBuf,
    pub run_dir: PathBuf,
    pub redirects: Redirects,
    /// Stop after this many rounds of every fault kind, even before `seconds`.
    pub rounds: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub seed: u64,
    pub masters: usize,
    pub agents: usize,
    pub seconds: u64,
    pub corral: String,
    pub run_dir: String,
    pub redirects: Redirects,
    pub elapsed_s: f64,
    pub verdict: &'static str,
    pub faults_required: Vec<FaultKind>,
    pub faults_never_applied: Vec<FaultKind>,
    pub fault_summary: BTreeMap<FaultKind, FaultSummary>,
    pub faults: Vec<FaultRecord>,
    pub operations: BTreeMap<&'static str, Counts>,
    pub register: check::register::RegisterSummary,
    pub stream_events_checked: usize,
    pub framework_subscriptions: u64,
    pub framework_resubscribe_ms: Option<report::Percentiles>,
    pub status_updates_received: usize,
    pub tasks_launched: usize,
    pub journal_indexes_checked: u64,
    pub converged: Option<(u64, String)>,
    pub replay_digest: Option<String>,
    pub terms_seen: usize,
    /// Leaderships that began while no fault aimed at the leader was under way (seconds into
    /// the run, master, term): what the election timing costs in stability.
    pub unprovoked_elections: Vec<(f64, String, u64)>,
    pub violations: Vec<Violation>,
}

fn seconds_since(clock: &Clock) -> f64 {
    clock.now_ns() as f64 / 1e9
}

pub async fn run(options: Options) -> anyhow::Result<Report> {
    let removed = netns::remove_stale()?;
    if !removed.is_empty() {
        eprintln!("chaos: removed what a crashed earlier run left: {}", removed.join(", "));
    }
    std::fs::create_dir_all(&options.run_dir)?;
    let mut names: Vec<String> = (1..=options.masters).map(|n| format!("m{n}")).collect();
    names.extend((1..=options.agents).map(|n| format!("a{n}")));
    let net = Net::create(&names)?;
    let mut cluster = Cluster::new(
        net,
        options.corral.clone(),
        options.run_dir.clone(),
        options.masters,
        options.agents,
    );
    let clock = Clock::new();
    let mut rng = Rng::new(options.seed);
    let (stop_monitor, monitor_stop) = watch::channel(false);
    let monitor = Monitor::spawn(cluster.master_addresses(), clock, monitor_stop);

    for index in 0..options.masters {
        cluster.start_master(index)?;
    }
    let setup =
        Nemesis { cluster: &mut cluster, monitor: monitor.clone(), clock, rng: rng.fork(0) };
    let Some((leader, _)) = setup.settle(Duration::from_secs(60)).await else {
        bail!("the masters never agreed on a leader (logs in {})", options.run_dir.display())
    };
    eprintln!("chaos: {} masters up, m{} leads", options.masters, leader + 1);
    let masters = cluster.master_addresses();
    let setup_http = client::following(Duration::from_secs(3));
    let timeout_seconds = AGENT_TIMEOUT.as_secs_f64();
    until_ok("setting the agent heartbeat timeout", || {
        setup_http
            .patch(format!("http://{}/corral/v1/settings", masters[leader]))
            .json(&json!({"agent_heartbeat_timeout_seconds": timeout_seconds}))
    })
    .await?;
    for index in 0..options.agents {
        cluster.start_agent(index)?;
    }
    // Apps the built-in scheduler keeps running through the faults: the app-limit check
    // watches their instances at every applied index.
    for (id, instances) in [("/chaos-svc/web-1", 2), ("/chaos-svc/web-2", 1)] {
        until_ok("creating a service app", || {
            setup_http.post(format!("http://{}/v2/apps", masters[0])).json(&json!({
                "id": id, "cmd": "sleep 3600", "instances": instances, "cpus": 0.05, "mem": 8}))
        })
        .await?;
    }

    let history = History::new(clock);
    let (stop_workloads, stop) = watch::channel(false);
    let (finish_framework, finish) = watch::channel(false);
    let shared = Shared {
        masters: masters.clone(),
        history: history.clone(),
        stop,
        processes: Arc::new(AtomicU64::new(1)),
        redirects: options.redirects,
    };
    let values = Arc::new(AtomicU64::new(2));
    let mut simple = Vec::new();
    for client_number in 0..3 {
        simple.push(tokio::spawn(workload::register_client(
            shared.clone(),
            rng.fork(10 + client_number),
            values.clone(),
        )));
    }
    simple.push(tokio::spawn(workload::set_client(shared.clone(), rng.fork(20), 1)));
    let subscribers: Vec<_> = (0..3)
        .map(|number| {
            tokio::spawn(workload::stream_subscriber(
                shared.clone(),
                rng.fork(30 + number),
                format!("subscriber-{}", number + 1),
            ))
        })
        .collect();
    let framework = tokio::spawn(workload::framework(shared.clone(), rng.fork(40), finish));

    // The nemesis: each kind in turn, in an order drawn from the seed, until the time is up.
    let mut violations = Vec::new();
    let mut faults = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let mut nemesis =
        Nemesis { cluster: &mut cluster, monitor: monitor.clone(), clock, rng: rng.fork(1) };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let campaign_started_ns = clock.now_ns();
    let mut order = options.faults.clone();
    let mut round = 0;
    'campaign: loop {
        if options.rounds.is_some_and(|rounds| round >= rounds) {
            break;
        }
        round += 1;
        nemesis.rng.shuffle(&mut order);
        for kind in order.clone() {
            if Instant::now() >= deadline {
                break 'campaign;
            }
            let (record, found) = nemesis.apply(kind).await?;
            eprintln!(
                "chaos: {:>6.1}s {:<16} {:<45} recovery {:>6} leader kept {:<5} {}",
                record.start_s,
                kind.name(),
                record.target,
                record.recovery_ms.map_or("-".to_owned(), |ms| format!("{ms}ms")),
                record.leader_kept.map_or("-".to_owned(), |kept| kept.to_string()),
                record.note.clone().unwrap_or_default()
            );
            violations.extend(found);
            faults.push(record);
            tokio::time::sleep(Duration::from_millis(nemesis.rng.between(1_500, 3_000))).await;
        }
    }

    // Heal everything and let the cluster settle.
    nemesis.cluster.net.heal()?;
    nemesis.cluster.revive_all()?;
    if nemesis.settle(Duration::from_secs(30)).await.is_none() {
        violations.push(Violation::new(
            "liveness",
            "the healed cluster did not settle on one leader within 30 s",
        ));
    }
    drop(nemesis);
    stop_workloads.send_replace(true);
    for task in simple {
        let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
    }
    let mut subscriber_records = Vec::new();
    for task in subscribers {
        if let Ok(Ok(subscriber)) = tokio::time::timeout(Duration::from_secs(15), task).await {
            subscriber_records.push(subscriber);
        }
    }
    // No agent, no new status update: then every one the log holds must reach the framework.
    cluster.stop_agents().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    finish_framework.send_replace(true);
    let framework_record = tokio::time::timeout(Duration::from_secs(15), framework)
        .await
        .context("the framework did not stop")?
        .context("the framework task failed")?;

    let converged = match converge(&masters, Duration::from_secs(30)).await {
        Ok(converged) => Some(converged),
        Err(problem) => {
            violations.push(Violation::new("convergence", problem));
            None
        }
    };
    stop_monitor.send_replace(true);
    cluster.stop_masters().await;
    let elapsed_s = seconds_since(&clock);

    // The journals, one per master.
    let digest_at: BTreeSet<u64> = converged.iter().map(|(index, _)| *index).collect();
    let mut facts: Vec<JournalFacts> = Vec::new();
    for index in 0..options.masters {
        let dir = cluster.data_dir(index).to_owned();
        let framework_id = framework_record.framework_id.clone();
        let digest_at = digest_at.clone();
        let analysed = tokio::task::spawn_blocking(move || {
            journal::analyse(&dir, framework_id.as_deref(), SET_PREFIX, &digest_at)
        })
        .await??;
        facts.push(analysed);
    }
    let mut replay_digest = None;
    if let Some((index, digest)) = &converged {
        for (master, fact) in facts.iter().enumerate() {
            if fact.digest_at.get(index) != Some(digest) {
                violations.push(Violation::new(
                    "convergence",
                    format!("m{}'s journal replayed to {index} gives {:?}, the masters reported {digest}", master + 1, fact.digest_at.get(index)),
                ));
            }
        }
        let replayed = replay_cli(cluster.corral(), cluster.data_dir(0), *index).await?;
        if &replayed != digest {
            violations.push(Violation::new("convergence", format!("corral replay --to {index} of m1 gives {replayed}, the masters reported {digest}")));
        }
        replay_digest = Some(replayed);
    }
    let first = &facts[0];
    for (master, fact) in facts.iter().enumerate().skip(1) {
        let common = first.events.len().min(fact.events.len());
        if let Some(at) = (0..common).find(|at| first.events[*at] != fact.events[*at]) {
            violations.push(Violation::new(
                "journal-divergence",
                format!(
                    "m1 and m{} journal different events at {} / {}",
                    master + 1,
                    first.events[at].0,
                    fact.events[at].0
                ),
            ));
        }
    }
    violations.extend(first.violations.iter().cloned());
    violations.extend(monitor.violations());

    // The checkers.
    let ops = history.ops();
    let register_ops = ops.clone();
    let (register_violations, register_summary) =
        tokio::task::spawn_blocking(move || check::register::check(&register_ops)).await?;
    violations.extend(register_violations);
    let present: BTreeMap<String, BTreeSet<String>> = facts
        .iter()
        .enumerate()
        .map(|(master, fact)| (format!("m{}", master + 1), fact.set_ids.clone()))
        .collect();
    violations.extend(check::set::check(&ops, &present));
    violations.extend(check::stream::check(&subscriber_records, &first.events));
    if framework_record.framework_id.is_some() {
        violations.extend(check::tasks::check(&framework_record.received, &first.tasks));
    } else {
        violations.push(Violation::new("tasks", "the framework never subscribed"));
    }

    let faults_never_applied: Vec<FaultKind> = options
        .faults
        .iter()
        .copied()
        .filter(|kind| !faults.iter().any(|fault| fault.kind == *kind && fault.applied))
        .collect();
    let verdict = if !violations.is_empty() {
        "violations"
    } else if !faults_never_applied.is_empty() {
        "unknown"
    } else {
        "passed"
    };
    let unprovoked_elections = unprovoked_elections(&monitor, &faults, campaign_started_ns);
    let history_path = options.run_dir.join("history.jsonl");
    let lines: Vec<String> = jepsen_events(&ops).iter().map(Value::to_string).collect();
    std::fs::write(&history_path, lines.join("\n") + "\n")?;
    Ok(Report {
        seed: options.seed,
        masters: options.masters,
        agents: options.agents,
        seconds: options.seconds,
        corral: options.corral.display().to_string(),
        redirects: options.redirects,
        run_dir: options.run_dir.display().to_string(),
        elapsed_s,
        verdict,
        faults_required: options.faults.clone(),
        faults_never_applied,
        fault_summary: report::summarize_faults(&faults, &ops),
        faults,
        operations: report::counts_by_workload(&ops),
        register: register_summary,
        stream_events_checked: subscriber_records
            .iter()
            .flat_map(|s| &s.segments)
            .map(|s| s.count)
            .sum(),
        framework_subscriptions: framework_record.subscriptions,
        framework_resubscribe_ms: (!framework_record.resubscribe_millis.is_empty())
            .then(|| report::percentiles(&framework_record.resubscribe_millis)),
        status_updates_received: framework_record.received.len(),
        tasks_launched: first.tasks.launches.len(),
        journal_indexes_checked: first.last_index - first.first_index + 1,
        converged,
        replay_digest,
        terms_seen: monitor.terms_seen(),
        unprovoked_elections,
        violations,
    })
}

/// Elections after the campaign began that no leader fault explains: one counts as explained
/// when it began between a leader fault's start and one second after the cluster settled.
fn unprovoked_elections(
    monitor: &Monitor,
    faults: &[FaultRecord],
    from_ns: u64,
) -> Vec<(f64, String, u64)> {
    let explained = |at_s: f64| {
        faults.iter().any(|fault| {
            let aimed_at_leader = fault.recovery_ms.is_some()
                || fault.kind == FaultKind::KillAll
                || fault.leader_kept.is_none();
            let until = fault.settled_s.unwrap_or(f64::MAX) + 1.0;
            aimed_at_leader && fault.start_s <= at_s && at_s <= until
        })
    };
    monitor
        .elections_between(from_ns, u64::MAX)
        .into_iter()
        .map(|(at_ns, master, term)| (at_ns as f64 / 1e9, format!("m{}", master + 1), term))
        .filter(|(at_s, _, _)| !explained(*at_s))
        .collect()
}

/// Sends the request until it is answered with 2xx (or 409: already there), for setup steps.
async fn until_ok(what: &str, request: impl Fn() -> reqwest::RequestBuilder) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = send(request()).await;
        match &reply {
            Reply::Status(status, _) if (200..300).contains(status) || *status == 409 => {
                return Ok(())
            }
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            other => bail!("{what}: {other:?}"),
        }
    }
}

/// Polls every master until all report the same state digest at the same applied index.
async fn converge(masters: &[String], within: Duration) -> Result<(u64, String), String> {
    let http = client::direct(Duration::from_secs(1));
    let deadline = Instant::now() + within;
    let mut seen: BTreeMap<u64, BTreeMap<usize, String>> = BTreeMap::new();
    while Instant::now() < deadline {
        for (index, master) in masters.iter().enumerate() {
            let url = format!("http://{master}/corral/v1/cluster?digest=true");
            let Ok(response) = http.get(url).send().await else {
                continue;
            };
            let Ok(body) = response.json::<Value>().await else { continue };
            let Some(view) = MasterView::parse(&body) else { continue };
            if view.digest.is_empty() {
                return Err(format!("master {master} gave no state digest: {body}"));
            }
            let at = seen.entry(view.digest_index).or_default();
            at.insert(index, view.digest);
            let digests: BTreeSet<&String> = at.values().collect();
            if digests.len() > 1 {
                return Err(format!(
                    "at index {} the masters report different digests: {at:?}",
                    view.digest_index
                ));
            }
            if at.len() == masters.len() {
                let digest = at.values().next().cloned().unwrap_or_default();
                return Ok((view.digest_index, digest));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("the masters never reported the same index within {within:?}"))
}

/// `corral replay --data-dir DIR --to INDEX`, and the digest it prints.
async fn replay_cli(
    corral: &std::path::Path,
    data_dir: &std::path::Path,
    index: u64,
) -> anyhow::Result<String> {
    let output = tokio::process::Command::new(corral)
        .args(["replay", "--data-dir"])
        .arg(data_dir)
        .args(["--to", &index.to_string()])
        .output()
        .await
        .context("cannot run corral replay")?;
    if !output.status.success() {
        bail!("corral replay failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("digest "))
        .map(|digest| digest.trim().to_owned())
        .with_context(|| format!("corral replay printed no digest: {text}"))
}
