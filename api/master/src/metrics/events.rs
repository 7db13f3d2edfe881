//! Metrics the leader reads off the event stream it already follows for the allocator: task
//! transitions, launch latency (ACCEPT applied → RUNNING), and how long a new framework waits
//! for its first offer. Only the leader counts, so summing over masters counts each once.

use std::collections::BTreeMap;

use corral_state::model::TaskState;
use corral_state::{Event, FrameworkId, TaskId, Timestamp};

use super::Metrics;

/// Launches and subscriptions waiting for their RUNNING or first offer are forgotten past
/// this many, oldest first, so a flood of tasks that never run cannot grow the leader.
const MAX_PENDING: usize = 100_000;

/// What the leader remembers between two events of the same task or framework.
#[derive(Default)]
pub(crate) struct EventMetrics {
    launched: BTreeMap<(FrameworkId, TaskId), Timestamp>,
    subscribed: BTreeMap<FrameworkId, Timestamp>,
}

impl EventMetrics {
    /// Feeds one event; `now` is the leader's clock when it reads the event.
    pub(crate) fn observe(&mut self, metrics: &Metrics, event: &Event, now: Timestamp) {
        match event {
            Event::TaskAdded { task } => {
                metrics.task_transitions.with_label_values(&[task.state.as_mesos_str()]).inc();
                if self.launched.len() >= MAX_PENDING {
                    self.launched.pop_first();
                }
                self.launched
                    .insert((task.framework_id.clone(), task.id().clone()), task.launched_at);
            }
            Event::TaskUpdated { framework_id, status, previous, .. } => {
                if status.state == *previous {
                    return;
                }
                metrics.task_transitions.with_label_values(&[status.state.as_mesos_str()]).inc();
                let key = (framework_id.clone(), status.task_id.clone());
                if status.state == TaskState::Running {
                    if let Some(launched_at) = self.launched.remove(&key) {
                        metrics
                            .task_launch_seconds
                            .observe(status.timestamp.since(launched_at).as_secs_f64());
                    }
                } else if status.state.is_terminal() {
                    self.launched.remove(&key);
                }
            }
            Event::TaskDropped { status, .. } => {
                metrics.task_transitions.with_label_values(&[status.state.as_mesos_str()]).inc();
            }
            Event::FrameworkAdded { framework_id, .. } => {
                if self.subscribed.len() >= MAX_PENDING {
                    self.subscribed.pop_first();
                }
                self.subscribed.insert(framework_id.clone(), now);
            }
            Event::FrameworkRemoved { framework_id, .. } => {
                self.subscribed.remove(framework_id);
            }
            Event::OfferCreated { offer } => {
                if let Some(subscribed) = self.subscribed.remove(&offer.framework_id) {
                    metrics
                        .first_offer_seconds
                        .observe(offer.created_at.since(subscribed).as_secs_f64());
                }
                metrics.offered_cpus.inc_by(offer.resources.scalar("cpus").as_f64());
                metrics
                    .offered_memory_bytes
                    .inc_by(offer.resources.scalar("mem").as_f64() * 1024.0 * 1024.0);
            }
            Event::OfferDeclined { .. } => metrics.offers_declined.inc(),
            Event::OfferRescinded { .. } => metrics.offers_rescinded.inc(),
            _ => {}
        }
    }
}
