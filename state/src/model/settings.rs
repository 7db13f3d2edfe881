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
