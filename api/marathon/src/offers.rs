//! What the built-in scheduler last made of the offers it saw, per waiting app: the answer
//! to "why isn't my app deploying?" in `GET /v2/queue`. Kept by the leader only, in memory:
//! it describes the leader's recent matching, not the cluster's state.

use std::collections::{BTreeMap, VecDeque};

use corral_state::{AgentId, OfferId, Timestamp};
use serde::Serialize;

/// How many unused offers are remembered per app.
pub const LAST_UNUSED_OFFERS: usize = 10;

/// Why an offer was not used for an app: Marathon's `NoOfferMatchReason` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum NoMatchReason {
    UnfulfilledRole,
    UnfulfilledConstraint,
    NoCorrespondingReservationFound,
    AgentMaintenance,
    InsufficientCpus,
    InsufficientMemory,
    InsufficientDisk,
    InsufficientGpus,
    InsufficientPorts,
    DeclinedScarceResources,
}

impl NoMatchReason {
    /// Marathon's order in `processedOffersSummary.rejectSummaryLastOffers`.
    pub const ALL: [NoMatchReason; 10] = [
        NoMatchReason::UnfulfilledRole,
        NoMatchReason::UnfulfilledConstraint,
        NoMatchReason::NoCorrespondingReservationFound,
        NoMatchReason::AgentMaintenance,
        NoMatchReason::InsufficientCpus,
        NoMatchReason::InsufficientMemory,
        NoMatchReason::InsufficientDisk,
        NoMatchReason::InsufficientGpus,
        NoMatchReason::InsufficientPorts,
        NoMatchReason::DeclinedScarceResources,
    ];
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnusedOffer {
    pub offer_id: OfferId,
    pub agent_id: AgentId,
    pub hostname: String,
    pub reasons: Vec<NoMatchReason>,
    pub at: Timestamp,
    /// A human sentence per reason (which constraint, how much was short).
    pub details: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AppOffers {
    pub processed: u64,
    pub unused: u64,
    pub last_used_at: Option<Timestamp>,
    pub last_unused_at: Option<Timestamp>,
    /// Newest last, at most `LAST_UNUSED_OFFERS`.
    pub last_unused: VecDeque<UnusedOffer>,
    /// Per reason, how many offers it ruled out.
    pub declined_by: BTreeMap<NoMatchReason, u64>,
}

impl AppOffers {
    pub fn record_used(&mut self, at: Timestamp) {
        self.processed += 1;
        self.last_used_at = Some(at);
    }

    pub fn record_unused(&mut self, offer: UnusedOffer) {
        self.processed += 1;
        self.unused += 1;
        self.last_unused_at = Some(offer.at);
        for reason in &offer.reasons {
            *self.declined_by.entry(*reason).or_default() += 1;
        }
        self.last_unused.push_back(offer);
        while self.last_unused.len() > LAST_UNUSED_OFFERS {
            self.last_unused.pop_front();
        }
    }
}
