//! Time-based transitions, decided only when a Tick entry is applied, at its timestamp.

use super::require_leader;
use crate::cluster::ClusterState;
use crate::model::{FrameworkState, Liveness, RemovalReason, RescindReason};
use crate::shared::SharedMapExt;
use crate::{AgentId, Entry, Event, FrameworkId, Rejection};

impl ClusterState {
    pub(crate) fn tick(&mut self, entry: &Entry, events: &mut Vec<Event>) -> Result<(), Rejection> {
        require_leader(entry)?;
        let now = self.now;

        if let Some(timeout) = self.settings.offer_timeout {
            self.rescind_offers_where(
                |offer| offer.created_at.plus(timeout) <= now,
                RescindReason::Expired,
                events,
            );
        }

        // Only frameworks with an expired filter are changed, so a copy taken for a read
        // keeps sharing the others.
        let expired: Vec<FrameworkId> = self
            .frameworks
            .values()
            .filter(|framework| framework.filters.values().any(|filter| filter.until <= now))
            .map(|framework| framework.id.clone())
            .collect();
        for framework_id in expired {
            let framework =
                self.frameworks.get_mut(&framework_id).expect("the framework was just listed");
            framework.filters.retain(|_, filter| filter.until > now);
        }

        let timed_out: Vec<FrameworkId> = self
            .frameworks
            .values()
            .filter(|framework| match framework.state {
                FrameworkState::Disconnected { since } => {
                    since.plus(framework.info.failover_timeout) <= now
                }
                FrameworkState::Connected => false,
            })
            .map(|framework| framework.id.clone())
            .collect();
        for framework_id in timed_out {
            self.remove_framework(&framework_id, RemovalReason::FailoverTimeout, events);
        }

        let heartbeat_timeout = self.settings.agent_heartbeat_timeout;
        let silent: Vec<AgentId> = self
            .agents
            .values()
            .filter(|agent| {
                agent.liveness == Liveness::Reachable
                    && agent.last_heartbeat.plus(heartbeat_timeout) <= now
            })
            .map(|agent| agent.id.clone())
            .collect();
        for agent_id in silent {
            self.mark_agent_unreachable(&agent_id, events);
        }

        let gone_after = self.settings.agent_unreachable_to_gone;
        let expired: Vec<AgentId> = self
            .agents
            .values()
            .filter(|agent| matches!(agent.liveness, Liveness::Unreachable { since } if since.plus(gone_after) <= now))
            .map(|agent| agent.id.clone())
            .collect();
        for agent_id in expired {
            self.mark_agent_gone(&agent_id, false, events);
        }

        self.expire_unreachable_instances(events);
        self.expire_request_ids();
        Ok(())
    }
}
