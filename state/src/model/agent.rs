use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{ExecutorId, FrameworkId, TaskId};
use crate::{AgentId, Resources, Timestamp};

/// `key:value` attributes from `--attributes 'rack:a;zone:2'`, sorted by key.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Attributes(pub Vec<(String, String)>);

impl Attributes {
    /// Parses the Mesos `--attributes` syntax: `rack:a;zone:2`.
    pub fn parse(text: &str) -> Result<Attributes, String> {
        let mut pairs = Vec::new();
        for item in text.split(';').map(str::trim).filter(|item| !item.is_empty()) {
            let (key, value) = item
                .split_once(':')
                .ok_or_else(|| format!("attribute '{item}' is not 'name:value'"))?;
            let (key, value) = (key.trim(), value.trim());
            if key.is_empty() {
                return Err(format!("attribute '{item}' has an empty name"));
            }
            pairs.push((key.to_owned(), value.to_owned()));
        }
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        Ok(Attributes(pairs))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// What an agent says about itself when it registers (Mesos `AgentInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub hostname: String,
    /// The address the agent's own HTTP server listens on, `ip:port`.
    pub address: String,
    pub attributes: Attributes,
}

/// Whether the master can reach the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Liveness {
    Reachable,
    /// Missed heartbeats for longer than the heartbeat timeout.
    Unreachable {
        since: Timestamp,
    },
    /// Will never come back under this id (operator said so, or unreachable too long).
    Gone {
        at: Timestamp,
        by_operator: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainConfig {
    /// Caps each task's kill grace period while draining.
    pub max_grace_period: Option<Duration>,
    /// Mark the agent gone once drained.
    pub mark_gone: bool,
}

/// Whether the agent may receive new work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentMode {
    Active,
    Deactivated,
    Draining(DrainConfig),
    Drained(DrainConfig),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub id: AgentId,
    pub info: AgentInfo,
    pub total: Resources,
    /// Held by tasks that are not terminal.
    pub allocated: Resources,
    /// Held by outstanding offers.
    pub offered: Resources,
    pub liveness: Liveness,
    pub mode: AgentMode,
    pub registered_at: Timestamp,
    pub reregistered_at: Option<Timestamp>,
    pub last_heartbeat: Timestamp,
    /// Tasks on this agent that the master still tracks (terminal ones until acknowledged).
    pub tasks: BTreeSet<(FrameworkId, TaskId)>,
    /// Executors with tasks on this agent.
    pub executors: BTreeSet<(FrameworkId, ExecutorId)>,
}

impl Agent {
    /// Reachable and active: the only agents whose resources may be offered.
    pub fn is_offerable(&self) -> bool {
        self.liveness == Liveness::Reachable && self.mode == AgentMode::Active
    }

    pub fn is_gone(&self) -> bool {
        matches!(self.liveness, Liveness::Gone { .. })
    }

    /// Whether `wanted` fits in what is neither allocated nor offered.
    pub fn check_fits(&self, wanted: &Resources) -> Result<(), crate::resources::Shortfall> {
        self.total.check_fits(&[&self.allocated, &self.offered], wanted)
    }

    /// What is neither allocated nor offered.
    pub fn free(&self) -> Resources {
        self.total.saturating_sub(&self.allocated).saturating_sub(&self.offered)
    }
}
