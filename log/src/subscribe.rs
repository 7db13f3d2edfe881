//! Event subscriptions: the committed events after a cursor, in log order, then new ones as
//! they are applied.
//!
//! Each subscription is one task reading the journal, so catching up and following live are
//! the same code and a master's memory per subscriber is its bounded buffer, however far
//! behind it is. A subscriber whose buffer is full while the log runs more than
//! [`SubscriptionLimits::max_lag_indexes`] ahead of it is ended with
//! [`SubscriptionEnded::TooSlow`]; it resumes from the last cursor it received.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use corral_state::{AgentId, Cursor, Event, FrameworkId, Topic};
use futures::Stream;
use tokio::sync::{mpsc, oneshot, watch};

use crate::journal::Journal;

/// Which events a subscriber wants. The default wants all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only these topics; `None` for every topic.
    pub topics: Option<BTreeSet<Topic>>,
    pub framework_id: Option<FrameworkId>,
    pub agent_id: Option<AgentId>,
}

impl EventFilter {
    pub fn all() -> EventFilter {
        EventFilter::default()
    }

    pub fn topics(topics: impl IntoIterator<Item = Topic>) -> EventFilter {
        EventFilter { topics: Some(topics.into_iter().collect()), ..EventFilter::default() }
    }

    pub fn matches(&self, event: &Event) -> bool {
        if self.topics.as_ref().is_some_and(|topics| !topics.contains(&event.topic())) {
            return false;
        }
        if self.framework_id.as_ref().is_some_and(|wanted| event.framework_id() != Some(wanted)) {
            return false;
        }
        if self.agent_id.as_ref().is_some_and(|wanted| event.agent_id() != Some(wanted)) {
            return false;
        }
        true
    }
}

/// Memory and patience granted to each subscriber.
#[derive(Clone, Copy, Debug)]
pub struct SubscriptionLimits {
    /// Events buffered for a subscriber that has not taken them yet.
    pub buffer_events: usize,
    /// How many log indexes a subscriber with a full buffer may fall behind before it is
    /// ended.
    pub max_lag_indexes: u64,
    /// Journal rows read at a time while catching up.
    pub read_rows: usize,
}

impl Default for SubscriptionLimits {
    fn default() -> SubscriptionLimits {
        SubscriptionLimits { buffer_events: 4096, max_lag_indexes: 100_000, read_rows: 256 }
    }
}

/// One event and where it is in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEvent {
    pub cursor: Cursor,
    pub event: Event,
}

/// Why a subscription stopped. Every reason but `Closed` can be resumed from the last cursor
/// received.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionEnded {
    #[error("subscriber fell {behind_by} log entries behind with a full buffer; resume from the last cursor received")]
    TooSlow { behind_by: u64 },
    #[error("events after the cursor are no longer retained; the oldest cursor to resume from is {oldest}")]
    TooOld { oldest: Cursor },
    #[error("the master is shutting down")]
    Closed,
    #[error("reading the journal failed: {0}")]
    Failed(String),
}

/// The events of a subscription, then the reason it ended.
pub struct Subscription {
    events: mpsc::Receiver<JournalEvent>,
    ended: Option<oneshot::Receiver<SubscriptionEnded>>,
    progress: SubscriptionProgress,
}

/// How far a subscription has read the log: every entry up to [`SubscriptionProgress::index`]
/// has been handed to the subscriber or filtered out. The applied index minus this is how
/// far the subscriber lags (it stops moving while a slow subscriber's buffer is full).
#[derive(Clone, Debug, Default)]
pub struct SubscriptionProgress(Arc<AtomicU64>);

impl SubscriptionProgress {
    pub fn index(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, index: u64) {
        self.0.store(index, Ordering::Relaxed);
    }
}

impl Subscription {
    /// A handle on how far this subscription has read, for lag metrics.
    pub fn progress(&self) -> SubscriptionProgress {
        self.progress.clone()
    }

    /// The next event, or why there will be no more (once), or `None` after that.
    pub async fn next(&mut self) -> Option<Result<JournalEvent, SubscriptionEnded>> {
        futures::StreamExt::next(self).await
    }
}

impl Stream for Subscription {
    type Item = Result<JournalEvent, SubscriptionEnded>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.events.poll_recv(context) {
            Poll::Ready(Some(event)) => return Poll::Ready(Some(Ok(event))),
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => {}
        }
        let Some(ended) = self.ended.as_mut() else { return Poll::Ready(None) };
        let reason = match Pin::new(ended).poll(context) {
            Poll::Ready(Ok(reason)) => reason,
            Poll::Ready(Err(_)) => SubscriptionEnded::Closed,
            Poll::Pending => return Poll::Pending,
        };
        self.ended = None;
        Poll::Ready(Some(Err(reason)))
    }
}

/// Checks the cursor is still covered by the journal and starts following.
pub(crate) fn subscribe(
    journal: Journal,
    applied_index: watch::Receiver<u64>,
    closing: watch::Receiver<bool>,
    from: Cursor,
    filter: EventFilter,
    limits: SubscriptionLimits,
) -> Result<Subscription, SubscriptionEnded> {
    if let Some(oldest) = journal.lost_through().filter(|lost| from < *lost) {
        return Err(SubscriptionEnded::TooOld { oldest });
    }
    let (events, receiver) = mpsc::channel(limits.buffer_events.max(1));
    let (ended, ended_receiver) = oneshot::channel();
    let progress = SubscriptionProgress::default();
    progress.set(from.index);
    let follower = Follower {
        journal,
        applied_index,
        closing,
        position: from,
        filter,
        limits,
        events,
        progress: progress.clone(),
    };
    tokio::spawn(async move {
        if let Some(reason) = follower.run().await {
            let _ = ended.send(reason);
        }
    });
    Ok(Subscription { events: receiver, ended: Some(ended_receiver), progress })
}

struct Follower {
    journal: Journal,
    applied_index: watch::Receiver<u64>,
    closing: watch::Receiver<bool>,
    /// The last cursor considered (delivered or filtered out).
    position: Cursor,
    filter: EventFilter,
    limits: SubscriptionLimits,
    events: mpsc::Sender<JournalEvent>,
    progress: SubscriptionProgress,
}

impl Follower {
    /// Runs until the subscriber goes away (`None`) or the subscription ends for a reason.
    async fn run(mut self) -> Option<SubscriptionEnded> {
        let mut next_index = self.position.index;
        loop {
            if let Some(oldest) = self.journal.lost_through().filter(|lost| self.position < *lost) {
                return Some(SubscriptionEnded::TooOld { oldest });
            }
            let applied = *self.applied_index.borrow_and_update();
            if next_index <= applied {
                let rows = match self.journal.events(next_index..=applied, self.limits.read_rows) {
                    Ok(rows) => rows,
                    Err(error) => return Some(SubscriptionEnded::Failed(error.to_string())),
                };
                let caught_up = rows.len() < self.limits.read_rows;
                next_index = match (caught_up, rows.last()) {
                    (false, Some((last_index, _))) => last_index + 1,
                    _ => applied + 1,
                };
                for (index, events) in rows {
                    for (seq, event) in (0u32..).zip(events) {
                        let cursor = Cursor::new(index, seq);
                        if cursor <= self.position {
                            continue;
                        }
                        if self.filter.matches(&event) {
                            if let Err(ending) = self.deliver(JournalEvent { cursor, event }).await
                            {
                                return ending;
                            }
                        }
                        self.position = cursor;
                    }
                }
                self.progress.set(next_index - 1);
                if !caught_up {
                    continue;
                }
            }
            tokio::select! {
                changed = self.applied_index.changed() => {
                    if changed.is_err() {
                        return Some(SubscriptionEnded::Closed);
                    }
                }
                _ = self.closing.wait_for(|closing| *closing) => return Some(SubscriptionEnded::Closed),
                () = self.events.closed() => return None,
            }
        }
    }

    /// `Err(None)`: the subscriber went away; `Err(Some(reason))`: end with a reason.
    async fn deliver(&mut self, event: JournalEvent) -> Result<(), Option<SubscriptionEnded>> {
        let event = match self.events.try_send(event) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(None),
            Err(mpsc::error::TrySendError::Full(event)) => event,
        };
        let cursor = event.cursor;
        loop {
            tokio::select! {
                permit = self.events.reserve() => {
                    let Ok(permit) = permit else { return Err(None) };
                    permit.send(event);
                    return Ok(());
                }
                changed = self.applied_index.changed() => {
                    if changed.is_err() {
                        return Err(Some(SubscriptionEnded::Closed));
                    }
                    let behind_by = self.applied_index.borrow().saturating_sub(cursor.index);
                    if behind_by > self.limits.max_lag_indexes {
                        return Err(Some(SubscriptionEnded::TooSlow { behind_by }));
                    }
                }
                _ = self.closing.wait_for(|closing| *closing) => return Err(Some(SubscriptionEnded::Closed)),
            }
        }
    }
}
