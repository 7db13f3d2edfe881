//! Polls every master's `GET /corral/v1/cluster` throughout the run: who leads, in which term,
//! and whether two masters ever led in the same term.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::check::Violation;
use crate::client;
use crate::cluster::MasterView;
use crate::history::Clock;

#[derive(Clone, Debug)]
struct Seen {
    at_ns: u64,
    view: MasterView,
}

#[derive(Default)]
struct Observed {
    latest: BTreeMap<usize, Seen>,
    /// term → masters that said they led in it.
    leaders: BTreeMap<u64, BTreeSet<usize>>,
    /// (when, master, term) each time a master first reports leading a term.
    elections: Vec<(u64, usize, u64)>,
}

#[derive(Clone)]
pub struct Monitor {
    clock: Clock,
    observed: Arc<Mutex<Observed>>,
}

/// How often each master is asked.
const POLL: Duration = Duration::from_millis(50);

impl Monitor {
    pub fn spawn(masters: Vec<String>, clock: Clock, stop: watch::Receiver<bool>) -> Monitor {
        let monitor = Monitor { clock, observed: Arc::default() };
        for (index, address) in masters.into_iter().enumerate() {
            let monitor = monitor.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let http = client::direct(Duration::from_millis(300));
                let url = format!("http://{address}/corral/v1/cluster");
                while !*stop.borrow() {
                    if let Ok(response) = http.get(&url).send().await {
                        if let Ok(body) = response.json::<serde_json::Value>().await {
                            if let Some(view) = MasterView::parse(&body) {
                                monitor.record(index, view);
                            }
                        }
                    }
                    tokio::time::sleep(POLL).await;
                }
            });
        }
        monitor
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Observed> {
        self.observed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, index: usize, view: MasterView) {
        let at_ns = self.clock.now_ns();
        let mut observed = self.lock();
        if view.role == "leader" && observed.leaders.entry(view.term).or_default().insert(index) {
            observed.elections.push((at_ns, index, view.term));
        }
        observed.latest.insert(index, Seen { at_ns, view });
    }

    /// The master that answered within `fresh` and says it leads, in the highest such term.
    pub fn leader(&self, fresh: Duration) -> Option<(usize, u64)> {
        let now = self.clock.now_ns();
        let observed = self.lock();
        observed
            .latest
            .iter()
            .filter(|(_, seen)| now.saturating_sub(seen.at_ns) <= fresh.as_nanos() as u64)
            .filter(|(_, seen)| seen.view.role == "leader")
            .map(|(index, seen)| (*index, seen.view.term))
            .max_by_key(|(_, term)| *term)
    }

    /// Every master in `among` answered within `fresh`, and all follow one leader in one term.
    pub fn settled(&self, among: &[usize], fresh: Duration) -> Option<(usize, u64)> {
        let now = self.clock.now_ns();
        let observed = self.lock();
        let mut agreed: Option<(u64, u64)> = None;
        for index in among {
            let seen = observed.latest.get(index)?;
            if now.saturating_sub(seen.at_ns) > fresh.as_nanos() as u64 {
                return None;
            }
            let here = (seen.view.leader?, seen.view.term);
            if agreed.is_some_and(|agreed| agreed != here) {
                return None;
            }
            agreed = Some(here);
        }
        let (leader, term) = agreed?;
        Some((usize::try_from(leader).ok()?.checked_sub(1)?, term))
    }

    /// The latest view of each master.
    pub fn views(&self) -> BTreeMap<usize, MasterView> {
        self.lock().latest.iter().map(|(index, seen)| (*index, seen.view.clone())).collect()
    }

    /// Leaderships that began in `[from_ns, to_ns]`.
    pub fn elections_between(&self, from_ns: u64, to_ns: u64) -> Vec<(u64, usize, u64)> {
        self.lock()
            .elections
            .iter()
            .filter(|(at, _, _)| (from_ns..=to_ns).contains(at))
            .copied()
            .collect()
    }

    pub fn terms_seen(&self) -> usize {
        self.lock().leaders.len()
    }

    /// Election safety: at most one leader per term.
    pub fn violations(&self) -> Vec<Violation> {
        self.lock()
            .leaders
            .iter()
            .filter(|(_, masters)| masters.len() > 1)
            .map(|(term, masters)| {
                let names: Vec<String> =
                    masters.iter().map(|index| format!("m{}", index + 1)).collect();
                Violation::new("election-safety", format!("term {term} had leaders {names:?}"))
            })
            .collect()
    }
}
