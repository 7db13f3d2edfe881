//! Mesos's `/metrics/snapshot` keys, so Mesos exporters and monitoring agents read a Corral
//! master unchanged. The operator API's `GET_METRICS` answers the same map.
//!
//! Resource amounts are in Mesos's units (MB for memory and disk). Task counts by state are
//! the tasks the master tracks, completed ones included as far as it keeps them.

use std::collections::BTreeMap;

use corral_state::model::TaskState;

use super::{Metrics, StateGauges};

const MEBIBYTE: f64 = 1024.0 * 1024.0;

/// What the key map is built from besides the state gauges.
pub(crate) struct MasterFacts {
    pub(crate) elected: bool,
    pub(crate) uptime_secs: f64,
}

/// The Mesos master's metric keys and their values.
pub(crate) fn mesos_snapshot(
    gauges: &StateGauges,
    facts: &MasterFacts,
    metrics: &Metrics,
) -> BTreeMap<String, f64> {
    let mut values: BTreeMap<String, f64> = BTreeMap::new();
    let mut put = |key: &str, value: f64| {
        values.insert(key.to_owned(), value);
    };
    put("master/elected", f64::from(u8::from(facts.elected)));
    put("master/uptime_secs", facts.uptime_secs);
    put("registrar/log/recovered", 1.0);
    let agents = |label: &str| gauges.agents.get(label).copied().unwrap_or(0) as f64;
    let reachable =
        agents("active") + agents("deactivated") + agents("draining") + agents("drained");
    put("master/slaves_active", agents("active") + agents("draining"));
    put("master/slaves_inactive", agents("deactivated") + agents("drained"));
    put("master/slaves_connected", reachable);
    put("master/slaves_disconnected", agents("unreachable"));
    put("master/slaves_unreachable", agents("unreachable"));
    let frameworks = |label: &str| gauges.frameworks.get(label).copied().unwrap_or(0) as f64;
    put("master/frameworks_active", frameworks("connected"));
    put("master/frameworks_inactive", frameworks("disconnected"));
    put("master/frameworks_connected", frameworks("connected"));
    put("master/frameworks_disconnected", frameworks("disconnected"));
    put("master/outstanding_offers", gauges.offers as f64);
    for state in TaskState::ALL {
        let key = format!(
            "master/tasks_{}",
            state.as_mesos_str().trim_start_matches("TASK_").to_ascii_lowercase()
        );
        put(&key, gauges.tasks.get(state.as_mesos_str()).copied().unwrap_or(0) as f64);
    }
    let (mut total, mut used) = ([0.0; 3], [0.0; 3]);
    for amounts in &gauges.resources {
        let into = match amounts.kind {
            "total" => &mut total,
            "allocated" => &mut used,
            _ => continue,
        };
        into[0] += amounts.cpus;
        into[1] += amounts.memory_bytes / MEBIBYTE;
        into[2] += amounts.disk_bytes / MEBIBYTE;
    }
    for (index, name) in ["cpus", "mem", "disk"].iter().enumerate() {
        put(&format!("master/{name}_total"), total[index]);
        put(&format!("master/{name}_used"), used[index]);
        let percent = if total[index] > 0.0 { used[index] / total[index] } else { 0.0 };
        put(&format!("master/{name}_percent"), percent);
    }
    // Counted by the leader as it reads the log, so a follower reports 0 (it is not elected).
    put("master/messages_decline_offers", metrics.offers_declined.get() as f64);
    put(
        "allocator/mesos/allocation_runs",
        metrics.allocator_cycle_seconds.get_sample_count() as f64,
    );
    values
}
