//! The leader's loops: allocation, ticks and the built-in service scheduler. Only the leader
//! runs them; a master that becomes leader starts them at once, rebuilding the allocator and
//! the scheduler's plan from the state.

use std::time::{Duration, Instant};

use corral_allocator::Allocator;
use corral_log::{EventFilter, JournalEvent, ReadConsistency, Subscription, SubscriptionEnded};
use corral_state::{Actor, ClusterState, Command, Event, FrameworkId, Outcome, Rejection};
use futures::FutureExt;
use tokio::sync::mpsc;

use crate::master::{new_request_id, wall_clock, ExplainQuery, ExplainRequest, Master};
use crate::metrics::EventMetrics;
use crate::stream::leadership_lost;

/// Runs forever: waits to lead, leads until deposed, repeats.
pub async fn run(master: Master) {
    // Every master counts the leader changes it sees, leading or not.
    let _leader_changes = AbortOnDrop(tokio::spawn(crate::metrics::follow_raft(
        master.node().clone(),
        master.inner.metrics.raft_leader_changes.clone(),
    )));
    let mut metrics = master.node().metrics();
    loop {
        while !master.node().is_leader() {
            if metrics.changed().await.is_err() {
                return;
            }
        }
        tracing::info!(node_id = master.node().node_id(), "leading: starting allocation and ticks");
        tokio::select! {
            () = lead(master.clone()) => {},
            () = leadership_lost(master.node().clone()) => {},
        }
        *master.inner.explain.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
        crate::autoscaler::forget(&master);
        tracing::info!(node_id = master.node().node_id(), "no longer leading");
    }
}

async fn lead(master: Master) {
    let config = master.inner.allocator_config.clone();
    // The allocator is built from the state and then fed the events after it: read at one
    // cursor, or the events in between are counted twice.
    let Ok((mut allocator, built_at)) = master
        .node()
        .read_with_cursor(ReadConsistency::Local, |state| Allocator::from_state(config, state))
        .await
    else {
        return;
    };
    let Ok(mut subscription) = master.node().subscribe(built_at, EventFilter::all()) else {
        return;
    };
    rescind_offers_to_unsubscribed(&master).await;
    let (explain_sender, mut explain_requests) = mpsc::channel::<ExplainRequest>(64);
    *master.inner.explain.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
        Some(explain_sender);
    // Its own task, so that a slow allocation or tick never holds a scheduling round up; the
    // guard ends it with this function, that is, when leadership is lost.
    let _scheduler = AbortOnDrop(tokio::spawn(crate::service_scheduler::run(master.clone())));
    let _autoscaler = AbortOnDrop(tokio::spawn(crate::autoscaler::run(master.clone())));
    let intervals = master.inner.intervals.clone();
    let mut event_metrics = EventMetrics::default();
    let mut allocation = tokio::time::interval(intervals.allocation);
    let mut tick = tokio::time::interval(intervals.tick);
    allocation.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(error) = master.propose(new_request_id(), Actor::Leader, Command::Tick).await {
                    tracing::debug!(%error, "tick not committed");
                }
            }
            _ = allocation.tick() => {
                if catch_up(&master, &mut subscription, &mut allocator, &mut event_metrics).await.is_err() {
                    return;
                }
                allocate(&master, &mut allocator).await;
            }
            () = master.inner.allocation_wanted.notified() => {
                if catch_up(&master, &mut subscription, &mut allocator, &mut event_metrics).await.is_err() {
                    return;
                }
                allocate(&master, &mut allocator).await;
            }
            next = subscription.next() => {
                if feed(&master, next, &mut allocator, &mut event_metrics).is_err() {
                    return;
                }
            }
            Some(request) = explain_requests.recv() => {
                let answer = match &request.query {
                    ExplainQuery::Framework(framework_id) => allocator.explain_framework(framework_id).and_then(|e| serde_json::to_value(e).ok()),
                    ExplainQuery::Role(role) => allocator.explain_role(role).and_then(|e| serde_json::to_value(e).ok()),
                };
                let _ = request.reply.send(answer);
            }
        }
    }
}

/// The allocator's feed ended: it is rebuilt from the state.
struct FeedEnded;

fn feed(
    master: &Master,
    next: Option<Result<JournalEvent, SubscriptionEnded>>,
    allocator: &mut Allocator,
    event_metrics: &mut EventMetrics,
) -> Result<(), FeedEnded> {
    match next {
        Some(Ok(journal_event)) => {
            event_metrics.observe(&master.inner.metrics, &journal_event.event, wall_clock());
            allocator.observe(&journal_event.event);
            Ok(())
        }
        Some(Err(ended)) => {
            tracing::warn!(%ended, "allocator lost its event feed; rebuilding");
            Err(FeedEnded)
        }
        None => Err(FeedEnded),
    }
}

/// How long an allocation waits for the allocator's feed to reach the applied index.
const CATCH_UP: Duration = Duration::from_millis(100);

/// Feeds the allocator the events of everything applied so far. A command that wakes the
/// allocator (a REVIVE, say) has been applied when it does, but its events reach the feed a
/// moment later; an allocator that has not seen the REVIVE still holds the role suppressed
/// and offers nothing until the next wake-up, up to an allocation interval later.
async fn catch_up(
    master: &Master,
    subscription: &mut Subscription,
    allocator: &mut Allocator,
    event_metrics: &mut EventMetrics,
) -> Result<(), FeedEnded> {
    let applied = master.node().applied_index();
    let progress = subscription.progress();
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    loop {
        // Read before draining: the feed hands events over before it moves its progress.
        let caught_up = progress.index() >= applied;
        while let Some(next) = subscription.next().now_or_never() {
            feed(master, next, allocator, event_metrics)?;
        }
        if caught_up {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            // This cycle allocates from what it has; the wake-up stays pending so that the
            // next one sees what woke it.
            master.inner.allocation_wanted.notify_one();
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether the leader can reach the framework: its scheduler stream is here, or it is the
/// built-in service framework, which the leader drives itself.
fn subscribed_here(master: &Master, state: &ClusterState, framework_id: &FrameworkId) -> bool {
    state.services().framework_id.as_ref() == Some(framework_id)
        || master.inner.scheduler_streams.holds(framework_id)
}

/// A new leader holds no scheduler stream: the frameworks' streams were on the old leader,
/// and each subscribes again once it notices (at once when the old leader died, only when
/// its heartbeats stop when it paused or was cut off). Their offers from the old leader would
/// hold those resources from every framework until then, so they are rescinded, as Mesos's
/// offers end with the master that made them.
async fn rescind_offers_to_unsubscribed(master: &Master) {
    // An offer answered between the read and the commit fails the whole command: read again.
    for _ in 0..3 {
        let unreachable = |state: &ClusterState| {
            let offers = state.offers().values();
            let stale = offers.filter(|offer| !subscribed_here(master, state, &offer.framework_id));
            stale.map(|offer| offer.id.clone()).collect::<Vec<_>>()
        };
        let Ok(offer_ids) = master.node().read(ReadConsistency::Local, unreachable).await else {
            return;
        };
        if offer_ids.is_empty() {
            return;
        }
        let command = Command::RescindOffers { offer_ids };
        match master.propose(new_request_id(), Actor::Leader, command).await {
            Ok(committed) => match committed.outcome.original() {
                Outcome::Rejected(Rejection::UnknownOffer(_)) => continue,
                Outcome::Rejected(rejection) => {
                    tracing::warn!(%rejection, "offers of unsubscribed frameworks not rescinded");
                    return;
                }
                _ => {
                    master.inner.allocation_wanted.notify_one();
                    return;
                }
            },
            Err(error) => {
                tracing::debug!(%error, "offers of unsubscribed frameworks not rescinded");
                return;
            }
        }
    }
}

async fn allocate(master: &Master, allocator: &mut Allocator) {
    let started = Instant::now();
    let now = wall_clock();
    // A copy (pointer copies) so that the cycle, hundreds of milliseconds at 10,000 agents,
    // neither holds applying back nor takes a runtime worker from Raft's own tasks: a
    // leader frozen that long misses its heartbeats and is voted out.
    let copy = master.node().read(ReadConsistency::Local, ClusterState::without_bookkeeping);
    let Ok(state) = copy.await else {
        return;
    };
    let allocation = corral_log::store::off_the_workers(|| {
        allocator.set_unsubscribed(|framework_id| subscribed_here(master, &state, framework_id));
        allocator.allocate(&state, now)
    });
    master.inner.metrics.allocator_cycle_seconds.observe(started.elapsed().as_secs_f64());
    if allocation.offers.is_empty() {
        return;
    }
    match master
        .propose(
            new_request_id(),
            Actor::Leader,
            Command::OfferResources { offers: allocation.offers },
        )
        .await
    {
        Ok(committed) => {
            let made = committed
                .outcome
                .events()
                .iter()
                .filter(|event| matches!(event, Event::OfferCreated { .. }))
                .count();
            master.inner.metrics.offers_made.inc_by(made as u64);
        }
        Err(error) => tracing::debug!(%error, "offers not committed"),
    }
}
