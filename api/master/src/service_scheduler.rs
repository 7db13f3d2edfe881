//! The built-in service scheduler's loop: while this master leads, it plans a round from the
//! state (`planner::plan`), proposes what the plan says as the leader, and keeps what it made
//! of the offers for `GET /v2/queue`.
//!
//! The loop holds no scheduling state of its own: every round starts from the log, so a
//! proposal the log refuses (a deposed leader's duplicate launch, a configuration that moved
//! on) is simply planned again from the state that refused it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use corral_log::{EventFilter, JournalEvent, ReadConsistency};
use corral_state::model::Filters;
use corral_state::{
    Actor, AppId, ClusterState, Command, Cursor, DeploymentId, Event, Force, FrameworkId,
    KillScaling, Outcome, TaskId, Timestamp, Topic, Wipe,
};
use futures::FutureExt;

use crate::master::{new_request_id, wall_clock, Master};
use corral_marathon::offers::{AppOffers, UnusedOffer};
use corral_marathon::planner::{self, Plan, Verdict};
use corral_marathon::AppDefinition;

/// The longest a round waits for an event: launch delays end and health changes arrive
/// without any event the loop listens to.
const ROUND_INTERVAL: Duration = Duration::from_secs(1);

/// Unused offers come back within a second: an app waiting for a constraint, for room or
/// for its launch delay (measured in seconds) must see the cluster's offers again as soon as
/// it can use them, not when a long refusal ends.
const DECLINE_FILTERS: Filters = Filters { refuse: Duration::from_secs(1) };

/// Runs rounds until the future is dropped (when leadership is lost).
pub(crate) async fn run(master: Master) {
    master.inner.service_offers.clear();
    let mut definitions = Definitions::default();
    let mut subscription = None;
    let mut interval = tokio::time::interval(ROUND_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let feed = match subscription.as_mut() {
            Some(feed) => feed,
            None => {
                let from = Cursor::new(master.node().applied_index(), u32::MAX);
                let topics = [Topic::Offer, Topic::Service, Topic::Task];
                match master.node().subscribe(from, EventFilter::topics(topics)) {
                    Ok(feed) => subscription.insert(feed),
                    Err(ended) => {
                        tracing::warn!(%ended, "service scheduler cannot follow the log");
                        interval.tick().await;
                        continue;
                    }
                }
            }
        };
        let planned = round(&master, &mut definitions).await;
        let (framework_id, planned_at) = match planned {
            Some((framework_id, planned_at)) => (Some(framework_id), planned_at),
            None => (None, Cursor::START),
        };
        // New offers, and statuses that may end, ready or fail an instance, make new work;
        // what the scheduler's own commands cause (accepted, declined, kill requested) does not,
        // nor does what the round already planned from.
        let relevant = |journal_event: &JournalEvent| {
            let event = &journal_event.event;
            if journal_event.cursor <= planned_at {
                return false;
            }
            let ours = framework_id.is_some() && event.framework_id() == framework_id.as_ref();
            match event {
                Event::OfferCreated { .. }
                | Event::TaskUpdated { .. }
                | Event::TaskDropped { .. }
                | Event::OfferRescinded { .. } => ours,
                _ => event.topic() == Topic::Service,
            }
        };
        let mut feed_ended = false;
        tokio::select! {
            _ = interval.tick() => {}
            woken = async {
                loop {
                    match feed.next().await {
                        Some(Ok(journal_event)) if relevant(&journal_event) => return true,
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => return false,
                    }
                }
            } => feed_ended = !woken,
        }
        // A burst (a batch of statuses, an allocation cycle's offers) makes one round.
        while let Some(next) = feed.next().now_or_never() {
            match next {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    feed_ended = true;
                    break;
                }
            }
        }
        if feed_ended {
            tracing::debug!("service scheduler's event feed ended; following again");
            subscription = None;
        }
    }
}

/// Parsed definitions, re-read only when an app's version changes.
#[derive(Default)]
struct Definitions {
    parsed: BTreeMap<AppId, AppDefinition>,
    versions: BTreeMap<AppId, Timestamp>,
}

impl Definitions {
    fn refresh(&mut self, state: &ClusterState) {
        let apps = &state.services().apps;
        self.versions.retain(|app_id, _| apps.contains_key(app_id));
        self.parsed.retain(|app_id, _| apps.contains_key(app_id));
        for (app_id, app) in apps {
            if self.versions.get(app_id) == Some(&app.version) {
                continue;
            }
            self.versions.insert(app_id.clone(), app.version);
            match AppDefinition::of_app(app) {
                Ok(definition) => {
                    self.parsed.insert(app_id.clone(), definition);
                }
                Err(error) => {
                    tracing::warn!(%app_id, %error, "app definition unreadable; not scheduling it");
                    self.parsed.remove(app_id);
                }
            }
        }
    }
}

/// One round: plan from the state, report, propose. Gives the service framework's id once it
/// exists, for telling its events from others', and the cursor the plan was made at.
async fn round(master: &Master, definitions: &mut Definitions) -> Option<(FrameworkId, Cursor)> {
    let now = wall_clock();
    let planned = master
        .node()
        .read_with_cursor(ReadConsistency::Local, |state| {
            definitions.refresh(state);
            let framework_id = state.services().framework_id.clone();
            let plan = planner::plan(state, &definitions.parsed, now, &mut fresh_task_id);
            (framework_id, plan)
        })
        .await;
    let Ok(((Some(framework_id), plan), planned_at)) = planned else { return None };
    report_offers(master, definitions, &plan, now);
    carry_out(master, &framework_id, plan).await;
    Some((framework_id, planned_at))
}

fn fresh_task_id(app_id: &AppId) -> TaskId {
    TaskId::new(format!("{}.{}", app_id.safe_name(), uuid::Uuid::new_v4()))
}

/// Records the round's verdicts; reports of apps that are gone go with them.
fn report_offers(master: &Master, definitions: &Definitions, plan: &Plan, now: Timestamp) {
    master.inner.service_offers.update(|reports| {
        reports.retain(|app_id, _| definitions.versions.contains_key(app_id));
        for verdict in &plan.verdicts {
            let report = reports.entry(verdict.app_id.clone()).or_default();
            for offer_id in &verdict.offer_ids {
                match &verdict.verdict {
                    Verdict::Used => report.record_used(now),
                    Verdict::Unused { reasons, details } => report.record_unused(UnusedOffer {
                        offer_id: offer_id.clone(),
                        agent_id: verdict.agent_id.clone(),
                        hostname: verdict.hostname.clone(),
                        reasons: reasons.clone(),
                        at: now,
                        details: details.clone(),
                    }),
                }
            }
        }
    });
}

async fn carry_out(master: &Master, framework_id: &FrameworkId, plan: Plan) {
    if !plan.kills.is_empty() {
        let kill = Command::KillServiceTasks {
            task_ids: plan.kills,
            scaling: KillScaling::Replace,
            wipe: Wipe::Keep,
            force: Force::Yes,
            deployment_id: DeploymentId::new(uuid::Uuid::new_v4().to_string()),
        };
        propose(master, kill).await;
    }
    // The rest is independent: proposed together, it shares the log's group commits instead
    // of waiting for one commit per agent.
    let mut commands: Vec<Command> = plan
        .launches
        .into_iter()
        .map(|launch| Command::LaunchServiceTasks {
            offer_ids: launch.offer_ids,
            launches: launch.launches,
            filters: DECLINE_FILTERS,
        })
        .collect();
    if !plan.declines.is_empty() {
        commands.push(Command::Decline {
            framework_id: framework_id.clone(),
            offer_ids: plan.declines,
            filters: DECLINE_FILTERS,
        });
    }
    if !plan.suppress.is_empty() {
        let roles = plan.suppress;
        commands.push(Command::Suppress { framework_id: framework_id.clone(), roles });
    }
    if !plan.revive.is_empty() {
        let roles = plan.revive;
        commands.push(Command::Revive { framework_id: framework_id.clone(), roles });
    }
    futures::future::join_all(commands.into_iter().map(|command| propose(master, command))).await;
}

async fn propose(master: &Master, command: Command) {
    let kind = command.kind();
    match master.propose(new_request_id(), Actor::Leader, command).await {
        Ok(committed) => {
            if let Outcome::Rejected(rejection) = &committed.outcome {
                // The next round plans again from whatever the log now says.
                tracing::debug!(kind, %rejection, "service scheduler's command refused");
            }
        }
        Err(error) => tracing::debug!(kind, %error, "service scheduler's command not committed"),
    }
}
/// Shared between the leader's scheduler loop (writes) and `/v2/queue` (reads).
#[derive(Default)]
pub struct OfferReports {
    apps: Mutex<BTreeMap<AppId, AppOffers>>,
}

impl OfferReports {
    pub fn update(&self, change: impl FnOnce(&mut BTreeMap<AppId, AppOffers>)) {
        change(&mut self.apps.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    }

    pub fn of(&self, app_id: &AppId) -> Option<AppOffers> {
        self.apps.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(app_id).cloned()
    }

    pub fn clear(&self) {
        self.apps.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests;
