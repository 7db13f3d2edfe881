//! What a stopped master's journal says: replayed entry by entry from the first index, with
//! the invariants checked at every applied index, and the facts the checkers compare the
//! clients' view with.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use anyhow::Context;
use corral_log::{store, JournalRetention};
use corral_state::{ClusterState, Cursor, Event};

use crate::check::tasks::JournalTasks;
use crate::check::Violation;

/// Everything read from one master's journal.
#[derive(Debug, Default)]
pub struct JournalFacts {
    pub first_index: u64,
    pub last_index: u64,
    pub commands: u64,
    /// The digest after the last index, and at each index asked for.
    pub final_digest: String,
    pub digest_at: BTreeMap<u64, String>,
    /// Over-commitment or app limits broken at some index.
    pub violations: Vec<Violation>,
    /// Apps whose id starts with the set workload's prefix, at the end.
    pub set_ids: BTreeSet<String>,
    /// Every event in log order, with the hash the stream checker compares.
    pub events: Vec<(Cursor, u64)>,
    pub tasks: JournalTasks,
}

/// A hash of an event's JSON as the native stream renders it (`"event": …`), so what a
/// subscriber received can be compared with the journal without keeping either.
pub fn event_hash(event_json: &serde_json::Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    event_json.to_string().hash(&mut hasher);
    hasher.finish()
}

/// At most this many invariant breaks are kept per kind; the first ones matter.
const KEPT: usize = 10;

pub fn analyse(
    data_dir: &Path,
    framework_id: Option<&str>,
    set_prefix: &str,
    digest_at: &BTreeSet<u64>,
) -> anyhow::Result<JournalFacts> {
    let (_, state_machine) =
        store::open(data_dir, store::InitialSettings::Recorded, JournalRetention::KEEP_ALL)
            .with_context(|| {
                format!("cannot open {} (is its master stopped?)", data_dir.display())
            })?;
    let journal = state_machine.journal();
    let Some((first, last)) = journal.bounds()? else {
        anyhow::bail!("the journal in {} is empty", data_dir.display())
    };
    if journal.lost_through().is_some() {
        anyhow::bail!("the journal in {} was trimmed by retention", data_dir.display());
    }
    let mut facts =
        JournalFacts { first_index: first, last_index: last, ..JournalFacts::default() };
    let mut state = ClusterState::default();
    let mut overcommits = Vec::new();
    let mut over_limit = Vec::new();
    // An index with no commands (a blank or membership entry) changes nothing: the state at
    // it is the state after the last index with commands before it.
    let mut pending: std::collections::VecDeque<u64> = digest_at.iter().copied().collect();
    for row in journal.commands(first..=last) {
        let (index, _, entries) = row?;
        while let Some(wanted) = pending.front().copied().filter(|wanted| *wanted < index) {
            facts.digest_at.insert(wanted, state.digest().to_string());
            pending.pop_front();
        }
        for entry in &entries {
            state.apply(entry);
        }
        facts.commands += entries.len() as u64;
        check_resources(&state, index, &mut overcommits);
        check_app_limits(&state, index, &mut over_limit);
        if pending.front() == Some(&index) {
            facts.digest_at.insert(index, state.digest().to_string());
            pending.pop_front();
        }
    }
    for wanted in pending {
        facts.digest_at.insert(wanted, state.digest().to_string());
    }
    facts.final_digest = state.digest().to_string();
    for (kind, found) in [("over-commitment", overcommits), ("app-limits", over_limit)] {
        let total = found.len();
        facts.violations.extend(found.into_iter().take(KEPT).map(|what| {
            Violation::new(
                if kind == "over-commitment" { "over-commitment" } else { "app-limits" },
                what,
            )
        }));
        if total > KEPT {
            facts
                .violations
                .push(Violation::new("journal", format!("{} more {kind} breaks", total - KEPT)));
        }
    }
    facts.set_ids = state
        .services()
        .apps
        .keys()
        .map(|id| id.to_string())
        .filter(|id| id.starts_with(set_prefix))
        .collect();
    for (index, events) in journal.events(first..=last, usize::MAX)? {
        for (seq, event) in events.iter().enumerate() {
            let cursor = Cursor { index, seq: seq as u32 };
            let json = serde_json::to_value(event).context("an event does not serialize")?;
            facts.events.push((cursor, event_hash(&json)));
            if let Some(framework_id) = framework_id {
                record_task_event(&mut facts.tasks, framework_id, event);
            }
        }
    }
    Ok(facts)
}

fn check_resources(state: &ClusterState, index: u64, found: &mut Vec<String>) {
    for agent in state.agents().values() {
        let used = agent.allocated.plus(&agent.offered);
        if let Err(shortfall) = agent.total.checked_sub(&used) {
            found.push(format!(
                "index {index}: agent {} holds {} allocated + {} offered of {} ({shortfall:?})",
                agent.id, agent.allocated, agent.offered, agent.total
            ));
        }
    }
}

fn check_app_limits(state: &ClusterState, index: u64, found: &mut Vec<String>) {
    for app in state.services().apps.values() {
        let counts = state.instance_counts(app);
        let most = app.spec.upgrade.maximum_live(app.spec.instances);
        if counts.current > app.spec.instances || counts.live > most {
            found.push(format!(
                "index {index}: app {} has {} live instances ({} of its current version); instances {}, at most {most} live",
                app.id, counts.live, counts.current, app.spec.instances
            ));
        }
    }
}

fn record_task_event(tasks: &mut JournalTasks, framework_id: &str, event: &Event) {
    match event {
        Event::TaskAdded { task } if task.framework_id.as_str() == framework_id => {
            *tasks.launches.entry(task.id().to_string()).or_insert(0) += 1;
        }
        Event::TaskUpdated { framework_id: owner, status, .. }
            if owner.as_str() == framework_id =>
        {
            if let Some(uuid) = &status.uuid {
                tasks.updates.push((
                    status.task_id.to_string(),
                    status.state.as_mesos_str().to_owned(),
                    uuid.to_string(),
                ));
            }
        }
        _ => {}
    }
}
