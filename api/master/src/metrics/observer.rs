//! The replicated log's metrics: its work as the log reports it ([`LogMetrics`], a
//! `corral_log::LogObserver`), leader changes as openraft's metrics watch shows them
//! ([`follow_raft`]), and its position at scrape time ([`Metrics::set_raft_status`]).

use corral_log::{ClusterStatus, LogNode, LogObserver, Observation};
use prometheus::{Histogram, HistogramVec, IntGaugeVec};

use super::Metrics;

/// Turns the log's observations into histograms; clones of the metrics, so the log holds no
/// reference to the master.
pub(crate) struct LogMetrics {
    append: Histogram,
    flush: Histogram,
    apply: Histogram,
    commit: Histogram,
    batch: Histogram,
    snapshot_seconds: HistogramVec,
    snapshot_bytes: IntGaugeVec,
}

impl LogMetrics {
    pub(crate) fn new(metrics: &Metrics) -> LogMetrics {
        LogMetrics {
            append: metrics.raft_append_seconds.clone(),
            flush: metrics.raft_flush_seconds.clone(),
            apply: metrics.raft_apply_seconds.clone(),
            commit: metrics.raft_commit_seconds.clone(),
            batch: metrics.raft_batch_commands.clone(),
            snapshot_seconds: metrics.raft_snapshot_seconds.clone(),
            snapshot_bytes: metrics.raft_snapshot_bytes.clone(),
        }
    }
}

impl LogObserver for LogMetrics {
    fn observe(&self, observation: Observation) {
        match observation {
            Observation::Append { took } => self.append.observe(took.as_secs_f64()),
            Observation::Flush { took } => self.flush.observe(took.as_secs_f64()),
            Observation::Apply { took, .. } => self.apply.observe(took.as_secs_f64()),
            Observation::Commit { commands, took } => {
                self.commit.observe(took.as_secs_f64());
                self.batch.observe(commands as f64);
            }
            Observation::SnapshotBuild { bytes, took } => {
                self.snapshot_seconds.with_label_values(&["build"]).observe(took.as_secs_f64());
                self.snapshot_bytes.with_label_values(&["build"]).set(saturating_i64(bytes));
            }
            Observation::SnapshotInstall { bytes, took } => {
                self.snapshot_seconds.with_label_values(&["install"]).observe(took.as_secs_f64());
                self.snapshot_bytes.with_label_values(&["install"]).set(saturating_i64(bytes));
            }
        }
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Counts leader changes as they happen (a scrape would miss a flap between two scrapes).
/// Runs until the log shuts down.
pub(crate) async fn follow_raft(node: LogNode, metrics: prometheus::IntCounter) {
    let mut watch = node.metrics();
    let mut leader = watch.borrow().current_leader;
    while watch.changed().await.is_ok() {
        let now = watch.borrow().current_leader;
        if now != leader {
            metrics.inc();
            leader = now;
        }
    }
}

impl Metrics {
    /// Sets the log's position gauges from one status read and the journal's bounds.
    pub(crate) fn set_raft_status(
        &self,
        status: &ClusterStatus,
        is_leader: bool,
        journal_bounds: Option<(u64, u64)>,
    ) {
        self.raft_term.set(saturating_i64(status.term));
        self.raft_is_leader.set(i64::from(is_leader));
        self.raft_has_leader.set(i64::from(status.leader.is_some()));
        self.raft_commit_index.set(saturating_i64(status.committed_index.unwrap_or(0)));
        self.raft_applied_index.set(saturating_i64(status.applied_index.unwrap_or(0)));
        self.raft_last_log_index.set(saturating_i64(status.last_log_index.unwrap_or(0)));
        self.raft_snapshot_index.set(saturating_i64(status.snapshot_index.unwrap_or(0)));
        let (first, last) = journal_bounds.unwrap_or((0, 0));
        self.journal_first_index.set(saturating_i64(first));
        self.journal_last_index.set(saturating_i64(last));
        self.raft_replication_lag.reset();
        let mut voters = 0;
        let mut learners = 0;
        for member in &status.members {
            if member.voter {
                voters += 1;
            } else {
                learners += 1;
            }
            if let Some(lag) = member.lag.filter(|_| member.node_id != status.node_id) {
                self.raft_replication_lag
                    .with_label_values(&[member.node_id.to_string().as_str()])
                    .set(saturating_i64(lag));
            }
        }
        self.raft_members.with_label_values(&["voter"]).set(voters);
        self.raft_members.with_label_values(&["learner"]).set(learners);
    }
}
