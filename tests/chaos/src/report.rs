//! The numbers a run reports: operations per workload, recovery times and throughput around
//! each kind of fault.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::history::{Op, Outcome};
use crate::nemesis::{FaultKind, FaultRecord};

#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

pub fn counts_by_workload(ops: &[Op]) -> BTreeMap<&'static str, Counts> {
    let mut counts: BTreeMap<&'static str, Counts> = BTreeMap::new();
    for op in ops {
        let entry = counts.entry(op.workload).or_default();
        match op.outcome {
            Outcome::Ok => entry.ok += 1,
            Outcome::Fail => entry.fail += 1,
            Outcome::Info => entry.info += 1,
        }
    }
    counts
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// Nearest-rank percentiles.
pub fn percentiles(values: &[u64]) -> Percentiles {
    if values.is_empty() {
        return Percentiles::default();
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank =
        |p: f64| sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    Percentiles {
        count: sorted.len(),
        p50: rank(0.5),
        p99: rank(0.99),
        max: sorted[sorted.len() - 1],
    }
}

/// Acknowledged operations per second (every workload) before, during and after a kind of
/// fault, averaged over its applications.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Throughput {
    pub before: f64,
    pub during: f64,
    pub after: f64,
}

/// Seconds looked at before a fault and after it settled.
const WINDOW_S: f64 = 5.0;

fn rate(ok_times: &[f64], from: f64, to: f64) -> f64 {
    if to <= from {
        return 0.0;
    }
    let count = ok_times.partition_point(|t| *t < to) - ok_times.partition_point(|t| *t < from);
    count as f64 / (to - from)
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct FaultSummary {
    pub applied: usize,
    pub recovery_ms: Option<Percentiles>,
    pub leader_kept: Option<String>,
    pub agent_back_ms: Option<Percentiles>,
    pub service_ms: Option<Percentiles>,
    pub throughput: Throughput,
}

pub fn summarize_faults(faults: &[FaultRecord], ops: &[Op]) -> BTreeMap<FaultKind, FaultSummary> {
    let mut ok_times: Vec<f64> = ops
        .iter()
        .filter(|op| op.outcome == Outcome::Ok)
        .map(|op| op.complete_ns as f64 / 1e9)
        .collect();
    ok_times.sort_by(f64::total_cmp);
    let mut summaries = BTreeMap::new();
    for kind in FaultKind::ALL {
        let applied: Vec<&FaultRecord> =
            faults.iter().filter(|fault| fault.kind == kind && fault.applied).collect();
        if applied.is_empty() {
            continue;
        }
        let recoveries: Vec<u64> = applied.iter().filter_map(|fault| fault.recovery_ms).collect();
        let agent_back: Vec<u64> = applied.iter().filter_map(|fault| fault.agent_back_ms).collect();
        let service: Vec<u64> = applied.iter().filter_map(|fault| fault.service_ms).collect();
        let kept: Vec<bool> = applied.iter().filter_map(|fault| fault.leader_kept).collect();
        let mut throughput = Throughput::default();
        for fault in &applied {
            let settled = fault.settled_s.unwrap_or(fault.end_s);
            throughput.before += rate(&ok_times, fault.start_s - WINDOW_S, fault.start_s);
            throughput.during += rate(&ok_times, fault.start_s, fault.end_s);
            throughput.after += rate(&ok_times, settled, settled + WINDOW_S);
        }
        let n = applied.len() as f64;
        throughput.before /= n;
        throughput.during /= n;
        throughput.after /= n;
        summaries.insert(
            kind,
            FaultSummary {
                applied: applied.len(),
                recovery_ms: (!recoveries.is_empty()).then(|| percentiles(&recoveries)),
                leader_kept: (!kept.is_empty()).then(|| {
                    format!("{} of {}", kept.iter().filter(|kept| **kept).count(), kept.len())
                }),
                agent_back_ms: (!agent_back.is_empty()).then(|| percentiles(&agent_back)),
                service_ms: (!service.is_empty()).then(|| percentiles(&service)),
                throughput,
            },
        );
    }
    summaries
}

#[cfg(test)]
mod tests {
    use super::{percentiles, rate, Percentiles};

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentiles(&values), Percentiles { count: 100, p50: 50, p99: 99, max: 100 });
        assert_eq!(percentiles(&[7]), Percentiles { count: 1, p50: 7, p99: 7, max: 7 });
        assert_eq!(percentiles(&[]), Percentiles::default());
    }

    #[test]
    fn rates_count_acknowledgements_in_the_window() {
        let times = [0.5, 1.5, 1.6, 2.5];
        assert_eq!(rate(&times, 1.0, 2.0), 2.0);
        assert_eq!(rate(&times, 0.0, 4.0), 1.0);
        assert_eq!(rate(&times, 3.0, 3.0), 0.0);
    }
}
