//! The autoscaler's decision, as a pure function: Kubernetes's HPA arithmetic over what the
//! leader measured, its stabilization windows and rate policies, and the safety rules the
//! log enforces (never during a deployment, never outside `[min, max]`).
//!
//! - Each metric recommends `ceil(counted × value / target)`, or the current count when the
//!   value is within `tolerance` of the target; the largest recommendation wins.
//! - Instances not ready (starting, unhealthy) count as 0 % when the metric asks to scale
//!   up and are ignored when it asks to scale down; ready instances without a sample count
//!   as 0 % up and as `max(100 %, target)` down. Neither may turn the direction around.
//! - Stabilization: scaling up takes the lowest recommendation of its window, scaling down
//!   the highest. The window's evidence is the log's: each recorded recommendation holds
//!   until the next one, so whichever leader evaluates, at the same time it sees the same
//!   window, and a failover neither shortens nor lengthens it. A stretch of the window
//!   before the first recorded recommendation (the policy is new) counts as a
//!   recommendation to stay. A zero window takes the recommendation of the moment alone.
//! - Rate policies (`Pods`, `Percent` per period) count the scalings the state recorded in
//!   each period, so they hold across failovers; the same limits are checked again when an
//!   `AutoscaleApp` is applied ([`allowed_range`]).
//! - An app at 0 instances is left alone (scaled to zero by hand, as Kubernetes does); one
//!   outside `[min, max]` is brought inside whatever the metrics say.

pub use crate::model::Recommendation;
use crate::model::{
    AutoscalerPolicy, Decision, Hold, HoldReason, Limit, MetricKind, MetricReading, MetricTarget,
    Millionths, RateKind, RatePolicy, RecordedScaling, Scaling, ScalingRules, SelectPolicy,
};
use crate::{DeploymentId, Timestamp};

/// Whether an instance counts as serving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Running, and healthy when it has health checks.
    Ready,
    /// Staging, starting, or unhealthy.
    NotReady,
}

/// One instance's measure for a utilization metric: its usage over what it asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceSample {
    pub readiness: Readiness,
    pub utilization: Option<Millionths>,
}

/// What the leader measured for one metric of the policy (in the policy's order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricSample {
    /// One sample per live instance (CPU, memory).
    PerInstance(Vec<InstanceSample>),
    /// One value for the whole app (a Prometheus query), `None` when the query failed.
    Whole(Option<Millionths>),
}

/// Everything one decision depends on.
#[derive(Clone, Debug)]
pub struct Evaluation<'a> {
    pub policy: &'a AutoscalerPolicy,
    pub now: Timestamp,
    /// The app's `instances`.
    pub current: u32,
    /// Ready instances now (for whole-app metrics).
    pub ready: u32,
    /// A deployment of the app under way, if any.
    pub deployment: Option<&'a DeploymentId>,
    /// Aligned with `policy.metrics`.
    pub samples: &'a [MetricSample],
    /// The recorded recommendations (each holds until the next), any order.
    pub history: &'a [Recommendation],
    /// The scalings the state recorded for the app.
    pub scalings: &'a [RecordedScaling],
}

/// Decides what to do with one app. The same evaluation always gives the same decision.
pub fn decide(evaluation: &Evaluation<'_>) -> Decision {
    let Evaluation { policy, current, .. } = *evaluation;
    let hold = |inputs: Vec<MetricReading>, recommended, reason| {
        Decision::Hold(Hold { inputs, current, recommended, reason })
    };
    if let Some(deployment_id) = evaluation.deployment {
        let reason = HoldReason::DeploymentRunning { deployment_id: deployment_id.clone() };
        return hold(Vec::new(), None, reason);
    }
    let inputs: Vec<MetricReading> = policy
        .metrics
        .iter()
        .zip(evaluation.samples)
        .filter_map(|(target, sample)| read_metric(evaluation, target, sample))
        .collect();
    let recommended = inputs.iter().map(|reading| reading.recommendation).max();
    if current == 0 {
        return hold(inputs, recommended, HoldReason::ScaledToZero);
    }
    if current < policy.min || current > policy.max {
        let (desired, limited_by) =
            if current < policy.min { (policy.min, Limit::Min) } else { (policy.max, Limit::Max) };
        let recommended = recommended.unwrap_or(current);
        return Decision::Scale(Scaling { inputs, current, recommended, desired, limited_by });
    }
    let Some(recommended) = recommended else {
        return hold(inputs, None, HoldReason::NoMetrics);
    };
    let stabilized = stabilize(evaluation, recommended);
    let (rated, rate) =
        limit_rate(policy, current, stabilized, evaluation.scalings, evaluation.now);
    let desired = rated.clamp(policy.min, policy.max);
    let limited_by = if desired != rated {
        if desired == policy.max {
            Limit::Max
        } else {
            Limit::Min
        }
    } else if rated != stabilized {
        rate.map_or(Limit::Disabled, Limit::Rate)
    } else if stabilized != recommended {
        Limit::Stabilization { window: window_towards(policy, current, recommended) }
    } else {
        Limit::None
    };
    if desired != current {
        return Decision::Scale(Scaling { inputs, current, recommended, desired, limited_by });
    }
    let reason = match limited_by {
        _ if recommended == current => HoldReason::WithinTolerance,
        Limit::Stabilization { window } => HoldReason::Stabilized { window },
        Limit::Rate(_) | Limit::Disabled => HoldReason::RateLimited,
        Limit::Max | Limit::Min | Limit::None => HoldReason::AtBound,
    };
    hold(inputs, Some(recommended), reason)
}

/// The instance counts an `AutoscaleApp` may move an app to from `current` at `now`, given
/// the scalings already recorded: what the rate policies and the bounds allow.
pub fn allowed_range(
    policy: &AutoscalerPolicy,
    current: u32,
    scalings: &[RecordedScaling],
    now: Timestamp,
) -> (u32, u32) {
    // Bringing an app back inside its bounds is never rate limited.
    if current < policy.min {
        return (policy.min, policy.min);
    }
    if current > policy.max {
        return (policy.max, policy.max);
    }
    let (highest, _) = limit_rate(policy, current, u32::MAX, scalings, now);
    let (lowest, _) = limit_rate(policy, current, 0, scalings, now);
    (lowest.max(policy.min), highest.min(policy.max))
}

fn window_towards(
    policy: &AutoscalerPolicy,
    current: u32,
    recommended: u32,
) -> std::time::Duration {
    if recommended > current {
        policy.scale_up.stabilization_window
    } else {
        policy.scale_down.stabilization_window
    }
}

fn ratio(value: Millionths, target: Millionths) -> u64 {
    let ratio = u128::from(value.0) * 1_000_000 / u128::from(target.0.max(1));
    u64::try_from(ratio).unwrap_or(u64::MAX)
}

fn within_tolerance(ratio: u64, tolerance: Millionths) -> bool {
    ratio.abs_diff(Millionths::ONE.0) <= tolerance.0
}

/// `ceil(ratio × count)`, with the ratio in millionths.
fn scaled(ratio: u64, count: u32) -> u32 {
    let product = u128::from(ratio) * u128::from(count);
    u32::try_from(product.div_ceil(1_000_000)).unwrap_or(u32::MAX)
}

fn read_metric(
    evaluation: &Evaluation<'_>,
    target: &MetricTarget,
    sample: &MetricSample,
) -> Option<MetricReading> {
    let current = evaluation.current;
    let tolerance = evaluation.policy.tolerance;
    let goal = target.target();
    match sample {
        MetricSample::Whole(value) => {
            let value = (*value)?;
            if evaluation.ready == 0 {
                return None;
            }
            let ratio = ratio(value, goal);
            let recommendation = if within_tolerance(ratio, tolerance) {
                current
            } else {
                scaled(ratio, evaluation.ready)
            };
            Some(MetricReading {
                metric: target.kind(),
                target: goal,
                value,
                ready: evaluation.ready,
                not_ready: 0,
                missing: 0,
                recommendation,
            })
        }
        MetricSample::PerInstance(instances) => {
            read_utilization(target.kind(), goal, tolerance, current, instances)
        }
    }
}

fn read_utilization(
    metric: MetricKind,
    target: Millionths,
    tolerance: Millionths,
    current: u32,
    instances: &[InstanceSample],
) -> Option<MetricReading> {
    let mut sum: u128 = 0;
    let (mut ready, mut not_ready, mut missing) = (0u32, 0u32, 0u32);
    for instance in instances {
        match (instance.readiness, instance.utilization) {
            (Readiness::NotReady, _) => not_ready += 1,
            (Readiness::Ready, None) => missing += 1,
            (Readiness::Ready, Some(utilization)) => {
                ready += 1;
                sum += u128::from(utilization.0);
            }
        }
    }
    if ready == 0 {
        return None;
    }
    let average = Millionths(u64::try_from(sum / u128::from(ready)).unwrap_or(u64::MAX));
    let reading = |recommendation| MetricReading {
        metric,
        target,
        value: average,
        ready,
        not_ready,
        missing,
        recommendation,
    };
    let first = ratio(average, target);
    let up = first > Millionths::ONE.0;
    let down = first < Millionths::ONE.0;
    let rebalance_not_ready = not_ready > 0 && up;
    if !rebalance_not_ready && missing == 0 {
        if within_tolerance(first, tolerance) {
            return Some(reading(current));
        }
        return Some(reading(scaled(first, ready)));
    }
    // Fill in the instances without a usable sample, against the direction asked for.
    let mut counted = ready;
    let mut total = sum;
    if missing > 0 {
        counted += missing;
        if down {
            total += u128::from(target.max(Millionths::ONE).0) * u128::from(missing);
        }
    }
    if rebalance_not_ready {
        counted += not_ready;
    }
    let average = Millionths(u64::try_from(total / u128::from(counted)).unwrap_or(u64::MAX));
    let second = ratio(average, target);
    let turned = (down && second > Millionths::ONE.0) || (up && second < Millionths::ONE.0);
    if within_tolerance(second, tolerance) || turned {
        return Some(reading(current));
    }
    let recommendation = scaled(second, counted);
    let against = (second < Millionths::ONE.0 && recommendation > current)
        || (second > Millionths::ONE.0 && recommendation < current);
    Some(reading(if against { current } else { recommendation }))
}

fn stabilize(evaluation: &Evaluation<'_>, recommended: u32) -> u32 {
    let Evaluation { policy, now, current, history, .. } = *evaluation;
    let mut history = history.to_vec();
    history.sort_by_key(|earlier| earlier.at);
    let up = window_extreme(&history, now, policy.scale_up.stabilization_window, current)
        .map_or(recommended, |(lowest, _)| recommended.min(lowest));
    let down = window_extreme(&history, now, policy.scale_down.stabilization_window, current)
        .map_or(recommended, |(_, highest)| recommended.max(highest));
    current.max(up).min(down)
}

/// The lowest and highest recommendation that held during the window ending at `now`
/// (none for a zero window): those recorded inside it, and the one in force at its start,
/// or "stay" (`current`) when none was recorded yet then. `history` is oldest first.
fn window_extreme(
    history: &[Recommendation],
    now: Timestamp,
    window: std::time::Duration,
    current: u32,
) -> Option<(u32, u32)> {
    if window.is_zero() {
        return None;
    }
    let cutoff = Timestamp(now.0.saturating_sub(nanos(window)));
    let inside = history.partition_point(|earlier| earlier.at <= cutoff);
    let at_start = inside.checked_sub(1).map_or(current, |index| history[index].count);
    let counts = history[inside..].iter().map(|earlier| earlier.count);
    let extremes =
        counts.fold((at_start, at_start), |(low, high), count| (low.min(count), high.max(count)));
    Some(extremes)
}

fn nanos(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// How far the rate policies let `current` move towards `wanted` at `now`, and the policy
/// that set the limit (none when the move is the other way or no policy limits it).
fn limit_rate(
    policy: &AutoscalerPolicy,
    current: u32,
    wanted: u32,
    scalings: &[RecordedScaling],
    now: Timestamp,
) -> (u32, Option<RatePolicy>) {
    if wanted > current {
        let (limit, rate) = rate_limit(&policy.scale_up, current, scalings, now, Direction::Up);
        return (wanted.min(limit), rate);
    }
    if wanted < current {
        let (limit, rate) = rate_limit(&policy.scale_down, current, scalings, now, Direction::Down);
        return (wanted.max(limit), rate);
    }
    (current, None)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// The furthest `current` may go in one direction now, and the policy that says so.
fn rate_limit(
    rules: &ScalingRules,
    current: u32,
    scalings: &[RecordedScaling],
    now: Timestamp,
    direction: Direction,
) -> (u32, Option<RatePolicy>) {
    if rules.select == SelectPolicy::Disabled {
        return (current, None);
    }
    let mut best: Option<(u32, RatePolicy)> = None;
    for rate in &rules.policies {
        let cutoff = Timestamp(now.0.saturating_sub(nanos(rate.period)));
        let moved: u64 = scalings
            .iter()
            .filter(|recorded| recorded.at > cutoff)
            .map(|recorded| {
                let Scaling { current: from, desired: to, .. } = recorded.scaling;
                u64::from(match direction {
                    Direction::Up => to.saturating_sub(from),
                    Direction::Down => from.saturating_sub(to),
                })
            })
            .sum();
        let moved = u32::try_from(moved).unwrap_or(u32::MAX);
        let limit = match direction {
            Direction::Up => {
                let start = u64::from(current.saturating_sub(moved));
                let reach = match rate.kind {
                    RateKind::Pods => start + u64::from(rate.value),
                    RateKind::Percent => (start * (100 + u64::from(rate.value))).div_ceil(100),
                };
                u32::try_from(reach).unwrap_or(u32::MAX).max(current)
            }
            Direction::Down => {
                let start = u64::from(current.saturating_add(moved));
                let reach = match rate.kind {
                    RateKind::Pods => start.saturating_sub(u64::from(rate.value)),
                    RateKind::Percent => start * 100u64.saturating_sub(u64::from(rate.value)) / 100,
                };
                u32::try_from(reach).unwrap_or(u32::MAX).min(current)
            }
        };
        // "Max" picks the policy allowing the most change, "Min" the least.
        let better = |than: u32| match (rules.select, direction) {
            (SelectPolicy::Max, Direction::Up) | (SelectPolicy::Min, Direction::Down) => {
                limit > than
            }
            _ => limit < than,
        };
        if best.is_none_or(|(than, _)| better(than)) {
            best = Some((limit, *rate));
        }
    }
    match best {
        Some((limit, rate)) => (limit, Some(rate)),
        // No policy: no limit in this direction.
        None => match direction {
            Direction::Up => (u32::MAX, None),
            Direction::Down => (0, None),
        },
    }
}
