use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Cluster-wide knobs. They live in the state (changed by a command), never in a replica's
/// flags, so that every replica decides timeouts the same way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Prefix of master-assigned ids.
    pub cluster_id: String,
    /// Outstanding offers older than this are rescinded; none by default, as in Mesos.
    pub offer_timeout: Option<Duration>,
    /// An agent silent this long becomes unreachable (Mesos: 15 s × 5 pings).
    pub agent_heartbeat_timeout: Duration,
    /// An agent unreachable this long is gone (Mesos `registry_max_agent_age`: two weeks).
    pub agent_unreachable_to_gone: Duration,
    /// How long a request id is remembered for de-duplication.
    pub dedup_window: Duration,
    /// At most this many request ids are remembered; the oldest are forgotten first.
    pub dedup_capacity: u32,
    /// Mesos `max_completed_tasks_per_framework`.
    pub max_completed_tasks_per_framework: u32,
    /// Mesos `max_completed_frameworks`.
    pub max_completed_frameworks: u32,
    /// Status history kept per task.
    pub max_statuses_per_task: u32,
}

/// The settings an operator changes, each left as it is when `None`. Applied as one command,
/// so two operators changing different settings at once both get their change.
/// `cluster_id` is not among them: ids already handed out carry it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsChange {
    /// `Some(None)` turns the offer timeout off.
    pub offer_timeout: Option<Option<Duration>>,
    pub agent_heartbeat_timeout: Option<Duration>,
    pub agent_unreachable_to_gone: Option<Duration>,
    pub dedup_window: Option<Duration>,
    pub dedup_capacity: Option<u32>,
    pub max_completed_tasks_per_framework: Option<u32>,
    pub max_completed_frameworks: Option<u32>,
    pub max_statuses_per_task: Option<u32>,
}

impl Settings {
    /// A cluster id prefixes every id the master hands out (agents, frameworks, offers) and
    /// through them container names, so it must be safe in all of those.
    pub fn check_cluster_id(id: &str) -> Result<(), &'static str> {
        let safe = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if id.is_empty() || !id.chars().all(safe) {
            return Err("must be non-empty letters, digits, '-' or '_'");
        }
        Ok(())
    }

    /// These settings with `change` made.
    pub fn changed(&self, change: &SettingsChange) -> Settings {
        let current = self.clone();
        Settings {
            cluster_id: current.cluster_id,
            offer_timeout: change.offer_timeout.unwrap_or(current.offer_timeout),
            agent_heartbeat_timeout: change
                .agent_heartbeat_timeout
                .unwrap_or(current.agent_heartbeat_timeout),
            agent_unreachable_to_gone: change
                .agent_unreachable_to_gone
                .unwrap_or(current.agent_unreachable_to_gone),
            dedup_window: change.dedup_window.unwrap_or(current.dedup_window),
            dedup_capacity: change.dedup_capacity.unwrap_or(current.dedup_capacity),
            max_completed_tasks_per_framework: change
                .max_completed_tasks_per_framework
                .unwrap_or(current.max_completed_tasks_per_framework),
            max_completed_frameworks: change
                .max_completed_frameworks
                .unwrap_or(current.max_completed_frameworks),
            max_statuses_per_task: change
                .max_statuses_per_task
                .unwrap_or(current.max_statuses_per_task),
        }
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            cluster_id: "corral".to_owned(),
            offer_timeout: None,
            agent_heartbeat_timeout: Duration::from_secs(75),
            agent_unreachable_to_gone: Duration::from_secs(14 * 24 * 3600),
            dedup_window: Duration::from_secs(300),
            dedup_capacity: 500_000,
            max_completed_tasks_per_framework: 1000,
            max_completed_frameworks: 50,
            max_statuses_per_task: 16,
        }
    }
}
