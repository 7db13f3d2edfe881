//! Builds explanations from what the last cycle recorded and what the mirror holds.

use corral_state::{FrameworkId, Role, Scalar};

use crate::allocator::Allocator;
use crate::amounts::share_as_fraction;
use crate::explain::{FrameworkExplanation, FrameworkRoleStanding, Reason, RoleExplanation};

impl Allocator {
    /// Why a framework was or was not offered resources in the last cycle; `None` for a
    /// framework the allocator has never heard of.
    pub fn explain_framework(&self, framework_id: &FrameworkId) -> Option<FrameworkExplanation> {
        let slot = *self.framework_index.get(framework_id)?;
        let framework = &self.frameworks[slot as usize];
        let cycle_at = self.last_summary.as_ref().map(|summary| summary.at);
        let mut roles = Vec::new();
        let mut reasons = Vec::new();
        for client in &framework.clients {
            let entry = &self.clients[*client as usize];
            let node = &self.nodes[entry.node as usize];
            let Some(role) = node.role.clone() else { continue };
            if entry.suppressed {
                reasons.push(Reason::Suppressed { role: role.clone() });
            }
            roles.push(FrameworkRoleStanding {
                role,
                dominant_share: share_as_fraction(entry.record.share),
                rank: entry.record.rank,
                eligible_frameworks_in_role: node.record.eligible_clients,
                suppressed: entry.suppressed,
                allocation: entry.allocation().to_quantities(),
            });
        }
        roles.sort_by(|a, b| a.role.cmp(&b.role));
        let record = &framework.record;
        let now = cycle_at.unwrap_or_default();
        let active_filters = framework.filters.active_count(now) as u32;
        if cycle_at.is_none() {
            reasons.push(Reason::NotYetConsidered);
        }
        if !framework.connected {
            reasons.push(Reason::Disconnected);
        } else if framework.unsubscribed {
            reasons.push(Reason::NotSubscribedToLeader);
        }
        if record.offers > 0 {
            reasons.push(Reason::Offered);
        }
        if record.filtered_agents > 0 {
            reasons.push(Reason::DeclineFilters { agents: record.filtered_agents });
        }
        if record.cap_reached {
            if let Some(cap) = self.config.max_offers_per_framework {
                reasons.push(Reason::OfferCapReached { cap });
            }
        }
        for client in &framework.clients {
            let node = &self.nodes[self.clients[*client as usize].node as usize].record;
            if node.limit_blocked > 0 {
                reasons.push(Reason::QuotaLimitReached { agents: node.limit_blocked });
            }
            if node.headroom_blocked > 0 {
                reasons.push(Reason::HeldForOtherRolesQuota { agents: node.headroom_blocked });
            }
        }
        self.add_cluster_reasons(&mut reasons, record.offers);
        Some(FrameworkExplanation {
            framework_id: framework_id.clone(),
            cycle_at,
            connected: framework.connected,
            offers_made: record.offers,
            roles,
            agents_filtered_by_declines: record.filtered_agents,
            agents_filtered_sample: record
                .filtered_sample
                .iter()
                .map(|agent| self.agents[*agent as usize].id.clone())
                .collect(),
            active_filters,
            reasons,
        })
    }

    /// Why a role's frameworks were or were not offered resources in the last cycle; `None`
    /// for a role the allocator has never seen (no framework, reservation or config).
    pub fn explain_role(&self, role: &Role) -> Option<RoleExplanation> {
        let node = *self.node_index.get(role)?;
        let entry = &self.nodes[node as usize];
        let cycle_at = self.last_summary.as_ref().map(|summary| summary.at);
        let mut frameworks: Vec<FrameworkId> = Vec::new();
        let mut suppressed_by: Vec<FrameworkId> = Vec::new();
        let mut subtree_offers = 0;
        let mut subtree_has_eligible = false;
        let mut pending = vec![node];
        while let Some(current) = pending.pop() {
            let current_entry = &self.nodes[current as usize];
            subtree_offers += current_entry.record.offers;
            subtree_has_eligible |= current_entry.record.eligible_clients > 0;
            pending.extend(current_entry.children.iter().copied());
        }
        for client in &entry.clients {
            let client = &self.clients[*client as usize];
            let framework_id = self.frameworks[client.framework as usize].id.clone();
            if client.suppressed {
                suppressed_by.push(framework_id.clone());
            }
            if client.subscribed {
                frameworks.push(framework_id);
            }
        }
        frameworks.sort();
        suppressed_by.sort();
        let unmet = entry.guarantees.minus_floored(entry.allocation);
        let dominant = crate::amounts::weighted_share(entry.allocation, self.cluster_total, 1000);
        let mut reasons = Vec::new();
        if cycle_at.is_none() {
            reasons.push(Reason::NotYetConsidered);
        }
        if subtree_offers > 0 {
            reasons.push(Reason::Offered);
        }
        if !subtree_has_eligible {
            reasons.push(Reason::NoFrameworks);
        }
        if !suppressed_by.is_empty() {
            reasons.push(Reason::Suppressed { role: role.clone() });
        }
        if entry.record.limit_blocked > 0 {
            reasons.push(Reason::QuotaLimitReached { agents: entry.record.limit_blocked });
        }
        if entry.record.headroom_blocked > 0 {
            reasons.push(Reason::HeldForOtherRolesQuota { agents: entry.record.headroom_blocked });
        }
        if subtree_has_eligible {
            self.add_cluster_reasons(&mut reasons, subtree_offers);
        }
        Some(RoleExplanation {
            role: role.clone(),
            cycle_at,
            weight: Scalar::from_milli(entry.weight_milli),
            dominant_share: share_as_fraction(dominant),
            weighted_share: share_as_fraction(entry.record.share),
            rank: entry.record.rank,
            siblings_in_running: entry.record.siblings,
            guarantees: entry.guarantees.to_quantities(),
            // Unlimited dimensions are left out.
            limits: entry.limits.to_quantities(),
            consumed: entry.allocation.to_quantities(),
            unmet_guarantee: unmet.to_quantities(),
            frameworks,
            suppressed_by,
            offers_made: subtree_offers,
            reasons,
        })
    }

    fn add_cluster_reasons(&self, reasons: &mut Vec<Reason>, offers: u32) {
        let Some(summary) = &self.last_summary else { return };
        let already_held =
            reasons.iter().any(|reason| matches!(reason, Reason::HeldForOtherRolesQuota { .. }));
        if summary.agents_held_for_quota > 0 && !already_held {
            reasons.push(Reason::HeldForOtherRolesQuota { agents: summary.agents_held_for_quota });
        }
        if summary.agents_too_small > 0 {
            reasons.push(Reason::ResourcesTooSmall { agents: summary.agents_too_small });
        }
        let explained = reasons.iter().any(|reason| {
            !matches!(
                reason,
                Reason::ResourcesTooSmall { .. } | Reason::HeldForOtherRolesQuota { .. }
            )
        });
        if offers == 0 && !explained {
            reasons.push(Reason::OutrankedOrNoFreeResources);
        }
    }
}
