//! One framework's subscription: what its stream says first, and which log events it then
//! carries. Pure: the HTTP layer feeds it the state and the events and writes what it returns.
//!
//! A (re)subscribing framework first gets SUBSCRIBED, then every update it has not
//! acknowledged (after a reconnect or a master failover, nothing unacknowledged is lost), then
//! its outstanding offers (offers live in the log, so they survive a failover). The state is
//! read after the subscription was committed, so the live events that follow may repeat
//! something the snapshot already said; the session drops those repeats.

use std::collections::BTreeSet;

use serde_json::Value as Json;

use super::convert::offer_to_json;
use super::events::{scheduler_events, subscribed_event, update_event};
use corral_state::{ClusterState, Event, FrameworkId, OfferId, UpdateUuid};

/// Mesos's default `heartbeat_interval_seconds` for scheduler streams.
pub const HEARTBEAT_INTERVAL_SECONDS: f64 = 15.0;

#[derive(Debug)]
pub struct FrameworkSession {
    framework_id: FrameworkId,
    offers_sent: BTreeSet<OfferId>,
    updates_sent: BTreeSet<UpdateUuid>,
}

/// What a live event means for the stream.
#[derive(Debug, PartialEq)]
pub enum SessionStep {
    /// Send these events and carry on.
    Send(Vec<Json>),
    /// Send these events, then close the stream: the framework is gone.
    SendAndClose(Vec<Json>),
}

impl FrameworkSession {
    /// Opens the stream: the first events, from the state as it is after the subscription.
    pub fn open(
        framework_id: FrameworkId,
        state: &ClusterState,
        master_info: Json,
    ) -> (FrameworkSession, Vec<Json>) {
        let mut session = FrameworkSession {
            framework_id: framework_id.clone(),
            offers_sent: BTreeSet::new(),
            updates_sent: BTreeSet::new(),
        };
        let mut first =
            vec![subscribed_event(&framework_id, HEARTBEAT_INTERVAL_SECONDS, master_info)];
        if let Some(framework) = state.framework(&framework_id) {
            for status in framework.pending_updates.values().flatten() {
                if let Some(uuid) = &status.uuid {
                    session.updates_sent.insert(uuid.clone());
                }
                first.push(update_event(status));
            }
            let offers: Vec<Json> = framework
                .offers
                .iter()
                .filter_map(|offer_id| state.offer(offer_id))
                .map(|offer| {
                    session.offers_sent.insert(offer.id.clone());
                    serde_json::to_value(offer_to_json(offer))
                        .expect("an offer's JSON has string keys only")
                })
                .collect();
            if !offers.is_empty() {
                first.push(serde_json::json!({"type": "OFFERS", "offers": {"offers": offers}}));
            }
        }
        (session, first)
    }

    pub fn framework_id(&self) -> &FrameworkId {
        &self.framework_id
    }

    /// The stream's reaction to one committed event.
    pub fn on_event(&mut self, event: &Event) -> SessionStep {
        let repeat = match event {
            Event::OfferCreated { offer } => !self.offers_sent.insert(offer.id.clone()),
            Event::TaskUpdated { status, .. } => {
                status.uuid.as_ref().is_some_and(|uuid| !self.updates_sent.insert(uuid.clone()))
            }
            Event::OfferRescinded { offer_id, .. }
            | Event::OfferAccepted { offer_id, .. }
            | Event::OfferDeclined { offer_id, .. } => {
                self.offers_sent.remove(offer_id);
                false
            }
            Event::StatusAcknowledged { uuid, .. } => {
                self.updates_sent.remove(uuid);
                false
            }
            _ => false,
        };
        if repeat {
            return SessionStep::Send(Vec::new());
        }
        let events = scheduler_events(&self.framework_id, event);
        match event {
            Event::FrameworkRemoved { framework_id, .. } if framework_id == &self.framework_id => {
                SessionStep::SendAndClose(events)
            }
            _ => SessionStep::Send(events),
        }
    }
}
