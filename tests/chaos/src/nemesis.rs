//! The faults, on a schedule drawn from the seed: partitions between masters, agents cut off
//! from masters, crashes, pauses. Each is applied, held, healed, and recorded with what it
//! cost: time to the first acknowledged write after a leader fault, whether a healthy leader
//! kept its term through a fault that did not touch it.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use crate::check::Violation;
use crate::client;
use crate::cluster::Cluster;
use crate::history::Clock;
use crate::monitor::Monitor;
use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    IsolateLeader,
    LeaderMinority,
    MajorityRing,
    OneWay,
    KillLeader,
    KillFollower,
    KillAll,
    PauseLeader,
    AgentPartition,
    AgentKill,
    AgentTimeout,
}

impl FaultKind {
    pub const ALL: [FaultKind; 11] = [
        FaultKind::IsolateLeader,
        FaultKind::LeaderMinority,
        FaultKind::MajorityRing,
        FaultKind::OneWay,
        FaultKind::KillLeader,
        FaultKind::KillFollower,
        FaultKind::KillAll,
        FaultKind::PauseLeader,
        FaultKind::AgentPartition,
        FaultKind::AgentKill,
        FaultKind::AgentTimeout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::IsolateLeader => "isolate-leader",
            FaultKind::LeaderMinority => "leader-minority",
            FaultKind::MajorityRing => "majority-ring",
            FaultKind::OneWay => "one-way",
            FaultKind::KillLeader => "kill-leader",
            FaultKind::KillFollower => "kill-follower",
            FaultKind::KillAll => "kill-all",
            FaultKind::PauseLeader => "pause-leader",
            FaultKind::AgentPartition => "agent-partition",
            FaultKind::AgentKill => "agent-kill",
            FaultKind::AgentTimeout => "agent-timeout",
        }
    }

    /// `all`, or a comma-separated list of names.
    pub fn parse_list(text: &str) -> Result<Vec<FaultKind>, String> {
        if text.trim() == "all" {
            return Ok(FaultKind::ALL.to_vec());
        }
        text.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| {
                FaultKind::ALL.into_iter().find(|kind| kind.name() == name).ok_or_else(|| {
                    let known: Vec<&str> = FaultKind::ALL.iter().map(|kind| kind.name()).collect();
                    format!("unknown fault '{name}'; known: all, {}", known.join(", "))
                })
            })
            .collect()
    }
}

/// One fault as applied.
#[derive(Clone, Debug, Serialize)]
pub struct FaultRecord {
    pub kind: FaultKind,
    pub target: String,
    pub applied: bool,
    pub note: Option<String>,
    /// Seconds since the run started.
    pub start_s: f64,
    pub end_s: f64,
    /// Healed and every master following one leader again.
    pub settled_s: Option<f64>,
    /// From the fault (for kill-all: the restart) to the first write acknowledged by a
    /// master other than the faulted leader.
    pub recovery_ms: Option<u64>,
    /// For faults that leave the leader alone: whether it kept its leadership and term.
    pub leader_kept: Option<bool>,
    /// For agent faults: from healing to the agent being reachable again.
    pub agent_back_ms: Option<u64>,
    /// For leader faults: from the fault to a new Marathon app's task running, created once
    /// a write was acknowledged — the built-in scheduler, the allocator and an agent all
    /// working through the new leader.
    pub service_ms: Option<u64>,
}

pub struct Nemesis<'a> {
    pub cluster: &'a mut Cluster,
    pub monitor: Monitor,
    pub clock: Clock,
    pub rng: Rng,
}

/// A leader answering within this is the leader.
const FRESH: Duration = Duration::from_millis(400);
/// How long a write after a leader fault may take before it counts as no recovery.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(20);
/// The agent heartbeat timeout the run sets, and how long an agent is cut off for it to pass.
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(3);

impl Nemesis<'_> {
    fn seconds(&self) -> f64 {
        self.clock.now_ns() as f64 / 1e9
    }

    /// Waits until every running master follows one leader; returns it.
    pub async fn settle(&self, within: Duration) -> Option<(usize, u64)> {
        let all: Vec<usize> = (0..self.cluster.masters.len()).collect();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(settled) = self.monitor.settled(&all, FRESH) {
                if self.monitor.leader(FRESH).map(|(leader, _)| leader) == Some(settled.0) {
                    return Some(settled);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    pub async fn apply(
        &mut self,
        kind: FaultKind,
    ) -> anyhow::Result<(FaultRecord, Vec<Violation>)> {
        let mut record = FaultRecord {
            kind,
            target: String::new(),
            applied: false,
            note: None,
            start_s: self.seconds(),
            end_s: self.seconds(),
            settled_s: None,
            recovery_ms: None,
            leader_kept: None,
            agent_back_ms: None,
            service_ms: None,
        };
        let Some((leader, term)) = self.settle(Duration::from_secs(20)).await else {
            record.note = Some("no settled leader to aim at".to_owned());
            return Ok((record, Vec::new()));
        };
        let masters = self.cluster.masters.len();
        let followers: Vec<usize> = (0..masters).filter(|index| *index != leader).collect();
        let name = |index: usize| format!("m{}", index + 1);
        let hold = Duration::from_millis(self.rng.between(2_500, 5_000));
        let mut probe_targets: Option<Vec<usize>> = None;
        let mut expect_leader_kept = false;
        record.start_s = self.seconds();
        let started = Instant::now();
        match kind {
            FaultKind::IsolateLeader => {
                for follower in &followers {
                    self.cluster.net.cut(&name(leader), &name(*follower))?;
                }
                record.target = format!(
                    "{} cut from {:?}",
                    name(leader),
                    followers.iter().map(|f| name(*f)).collect::<Vec<_>>()
                );
                probe_targets = Some(followers.clone());
            }
            FaultKind::LeaderMinority => {
                let mut minority = vec![leader];
                if masters >= 5 {
                    minority.push(*self.rng.pick(&followers));
                } else {
                    record.note =
                        Some("with 3 masters the leader's minority is the leader alone".to_owned());
                }
                let majority: Vec<usize> =
                    (0..masters).filter(|index| !minority.contains(index)).collect();
                for a in &minority {
                    for b in &majority {
                        self.cluster.net.cut(&name(*a), &name(*b))?;
                    }
                }
                record.target = format!(
                    "{:?} | {:?}",
                    minority.iter().map(|i| name(*i)).collect::<Vec<_>>(),
                    majority.iter().map(|i| name(*i)).collect::<Vec<_>>()
                );
                probe_targets = Some(majority);
            }
            FaultKind::MajorityRing => {
                if masters >= 5 {
                    let mut ring: Vec<usize> = (0..masters).collect();
                    self.rng.shuffle(&mut ring);
                    for a in 0..masters {
                        for b in a + 1..masters {
                            let adjacent = b - a == 1 || (a == 0 && b == masters - 1);
                            if !adjacent {
                                self.cluster.net.cut(&name(ring[a]), &name(ring[b]))?;
                            }
                        }
                    }
                    record.target =
                        format!("ring {:?}", ring.iter().map(|i| name(*i)).collect::<Vec<_>>());
                } else {
                    // Three masters: every node sees a majority only as a bridge (one link cut).
                    let cut_off = *self.rng.pick(&followers);
                    self.cluster.net.cut(&name(leader), &name(cut_off))?;
                    record.target = format!("bridge: {} cut from {}", name(cut_off), name(leader));
                }
                expect_leader_kept = true;
            }
            FaultKind::OneWay => {
                if self.rng.chance(50) {
                    for follower in &followers {
                        self.cluster.net.cut_one_way(&name(leader), &name(*follower))?;
                    }
                    record.target =
                        format!("{} cannot reach the others (they reach it)", name(leader));
                    probe_targets = Some(followers.clone());
                } else {
                    for follower in &followers {
                        self.cluster.net.cut_one_way(&name(*follower), &name(leader))?;
                    }
                    record.target =
                        format!("the others cannot reach {} (it reaches them)", name(leader));
                    expect_leader_kept = true;
                }
            }
            FaultKind::KillLeader => {
                self.cluster.kill_master(leader).await?;
                record.target = name(leader);
                probe_targets = Some(followers.clone());
            }
            FaultKind::KillFollower => {
                let victim = *self.rng.pick(&followers);
                self.cluster.kill_master(victim).await?;
                record.target = name(victim);
                expect_leader_kept = true;
            }
            FaultKind::KillAll => {
                for index in 0..masters {
                    self.cluster.kill_master(index).await?;
                }
                record.target = "every master".to_owned();
            }
            FaultKind::PauseLeader => {
                self.cluster.pause_master(leader)?;
                record.target = name(leader);
                probe_targets = Some(followers.clone());
            }
            FaultKind::AgentPartition => {
                let agent = self.rng.below(self.cluster.agents.len() as u64) as usize;
                let mut cut_from: Vec<usize> =
                    (0..masters).filter(|_| self.rng.chance(50)).collect();
                if cut_from.is_empty() || cut_from.len() == masters {
                    cut_from = vec![leader];
                }
                let agent_name = self.cluster.agents[agent].name.clone();
                for master in &cut_from {
                    self.cluster.net.cut(&agent_name, &name(*master))?;
                }
                record.target = format!(
                    "{agent_name} cut from {:?}",
                    cut_from.iter().map(|i| name(*i)).collect::<Vec<_>>()
                );
                expect_leader_kept = true;
            }
            FaultKind::AgentKill => {
                let agent = self.rng.below(self.cluster.agents.len() as u64) as usize;
                self.cluster.kill_agent(agent).await?;
                record.target = self.cluster.agents[agent].name.clone();
                expect_leader_kept = true;
            }
            FaultKind::AgentTimeout => {
                let agent = self.rng.below(self.cluster.agents.len() as u64) as usize;
                let agent_name = self.cluster.agents[agent].name.clone();
                for master in 0..masters {
                    self.cluster.net.cut(&agent_name, &name(master))?;
                }
                record.target =
                    format!("{agent_name} cut from every master past the heartbeat timeout");
                expect_leader_kept = true;
            }
        }
        record.applied = true;
        let app_number = self.rng.next_u64() % 1_000_000;
        let probe = probe_targets.map(|targets| {
            let addresses: Vec<String> =
                targets.iter().map(|index| self.cluster.masters[*index].address.clone()).collect();
            tokio::spawn(async move {
                let written = first_write(addresses.clone(), started).await;
                let service = match written {
                    Some(_) => service_running(&addresses[0], app_number, started).await,
                    None => None,
                };
                (written, service)
            })
        });
        let hold = if kind == FaultKind::AgentTimeout {
            AGENT_TIMEOUT * 2 + Duration::from_secs(1)
        } else {
            hold
        };
        tokio::time::sleep_until(started + hold).await;

        // Heal.
        let mut restart_probe: Option<tokio::task::JoinHandle<Option<u64>>> = None;
        match kind {
            FaultKind::KillLeader => self.cluster.start_master(leader)?,
            FaultKind::KillFollower | FaultKind::KillAll | FaultKind::AgentKill => {
                let restarted = Instant::now();
                self.cluster.revive_all()?;
                if kind == FaultKind::KillAll {
                    let addresses = self.cluster.master_addresses();
                    restart_probe = Some(tokio::spawn(first_write(addresses, restarted)));
                }
            }
            FaultKind::PauseLeader => self.cluster.resume_master(leader)?,
            _ => self.cluster.net.heal()?,
        }
        record.end_s = self.seconds();
        let healed = Instant::now();
        if let Some(probe) = restart_probe {
            record.recovery_ms = probe.await.ok().flatten();
        }
        if let Some(probe) = probe {
            if let Ok((written, service)) = probe.await {
                record.recovery_ms = written;
                record.service_ms = service;
            }
        }
        let settled = self.settle(Duration::from_secs(30)).await;
        record.settled_s = settled.map(|_| self.seconds());
        let mut violations = Vec::new();
        if settled.is_none() {
            violations.push(Violation::new(
                "liveness",
                format!(
                    "after {} ({}) the masters did not settle on one leader within 30 s",
                    kind.name(),
                    record.target
                ),
            ));
        }
        if expect_leader_kept {
            let kept = settled == Some((leader, term));
            record.leader_kept = Some(kept);
            if !kept {
                violations.push(Violation::new(
                    "leader-stability",
                    format!(
                        "{} ({}) did not touch the leader, yet m{} in term {term} became {:?}",
                        kind.name(),
                        record.target,
                        leader + 1,
                        settled.map(|(leader, term)| format!("m{} in term {term}", leader + 1))
                    ),
                ));
            }
        }
        if matches!(
            kind,
            FaultKind::AgentPartition | FaultKind::AgentKill | FaultKind::AgentTimeout
        ) {
            let hostname = record.target.split_whitespace().next().unwrap_or_default().to_owned();
            record.agent_back_ms = self.agent_back(&hostname, healed).await;
            if record.agent_back_ms.is_none() {
                violations.push(Violation::new(
                    "liveness",
                    format!("agent {hostname} was not reachable again within 30 s of healing"),
                ));
            }
        }
        Ok((record, violations))
    }

    /// Polls the leader's view until the agent named `hostname` is active again.
    async fn agent_back(&self, hostname: &str, since: Instant) -> Option<u64> {
        let http = client::direct(Duration::from_secs(1));
        let deadline = since + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some((leader, _)) = self.monitor.leader(FRESH) {
                let url = format!("http://{}/master/state", self.cluster.masters[leader].address);
                if let Ok(response) = http.get(url).send().await {
                    if let Ok(state) = response.json::<serde_json::Value>().await {
                        let active = state["slaves"].as_array().is_some_and(|agents| {
                            agents.iter().any(|agent| {
                                agent["hostname"] == hostname && agent["active"] == true
                            })
                        });
                        if active {
                            return Some(since.elapsed().as_millis() as u64);
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

/// Creates a one-instance Marathon app through `master` (following redirects) and waits for
/// its task to run; the time from `since`. The app is deleted afterwards.
async fn service_running(master: &str, number: u64, since: Instant) -> Option<u64> {
    let http = client::following(Duration::from_secs(2));
    let id = format!("/chaos-probe/app-{number}");
    let body = json!({"id": id, "cmd": "sleep 3600", "instances": 1, "cpus": 0.01, "mem": 8});
    let deadline = since + Duration::from_secs(30);
    let mut created = false;
    let mut running = None;
    while Instant::now() < deadline {
        if !created {
            let reply =
                client::send(http.post(format!("http://{master}/v2/apps")).json(&body)).await;
            created = matches!(reply, client::Reply::Status(201 | 409, _));
        } else {
            let url = format!("http://{master}/v2/apps{id}");
            if let client::Reply::Status(200, app) = client::send(http.get(url)).await {
                if app["app"]["tasksRunning"].as_u64().unwrap_or(0) >= 1 {
                    running = Some(since.elapsed().as_millis() as u64);
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = http.delete(format!("http://{master}/v2/apps{id}?force=true")).send().await;
    running
}

/// Writes to each of `masters` (directly, no redirects), each every 20 ms, until one
/// acknowledges; the time from `since` to that acknowledgement. A master that hangs (paused,
/// or cut off) delays only its own attempts.
async fn first_write(masters: Vec<String>, since: Instant) -> Option<u64> {
    use futures::StreamExt;
    let http = client::direct(Duration::from_millis(400));
    let mut writers: futures::stream::FuturesUnordered<_> = masters
        .into_iter()
        .map(|master| {
            let http = http.clone();
            async move {
                let url = format!("http://{master}/api/v1");
                let mut attempt = 0u64;
                while since.elapsed() < RECOVERY_DEADLINE {
                    attempt += 1;
                    let body = json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [
                        {"role": "chaos-probe", "weight": (attempt % 1000 + 1) as f64}]}});
                    let acknowledged = http
                        .post(&url)
                        .json(&body)
                        .send()
                        .await
                        .is_ok_and(|response| response.status().is_success());
                    if acknowledged {
                        return Some(since.elapsed().as_millis() as u64);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                None
            }
        })
        .collect();
    while let Some(result) = writers.next().await {
        if result.is_some() {
            return result;
        }
    }
    None
}
