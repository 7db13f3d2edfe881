//! Autoscaling policies and the decisions taken under them, as the log records them.
//!
//! A policy is state (set by an operator command); a decision that changes an app's
//! instances is a command carrying what it was decided from, so it is audited, replayed and
//! still known to the next leader. Values are fixed-point millionths so that they compare,
//! encode and hash exactly on every machine.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// A non-negative quantity in millionths: `Millionths(500_000)` is 0.5 (50 %).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Millionths(pub u64);

impl Millionths {
    pub const ONE: Millionths = Millionths(1_000_000);

    /// From a float as a client writes it; `None` for a negative, infinite or NaN value, or
    /// one too large to hold.
    pub fn from_f64(value: f64) -> Option<Millionths> {
        let scaled = (value * 1e6).round();
        if !scaled.is_finite() || scaled < 0.0 || scaled >= u64::MAX as f64 {
            return None;
        }
        Some(Millionths(scaled as u64))
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// From a percentage (`50` → 0.5).
    pub fn from_percent(percent: u64) -> Millionths {
        Millionths(percent.saturating_mul(10_000))
    }
}

/// What one metric of a policy measures and the value it aims at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricTarget {
    /// CPU used over the CPUs each instance asked for, averaged over instances.
    Cpu { target_utilization: Millionths },
    /// Memory held (RSS) over each instance's memory limit, averaged over instances.
    Memory { target_utilization: Millionths },
    /// One value for the whole app from a Prometheus instant query; `desired =
    /// ceil(ready × value / target)`.
    Prometheus { url: String, query: String, target: Millionths },
}

impl MetricTarget {
    pub fn kind(&self) -> MetricKind {
        match self {
            MetricTarget::Cpu { .. } => MetricKind::Cpu,
            MetricTarget::Memory { .. } => MetricKind::Memory,
            MetricTarget::Prometheus { .. } => MetricKind::Prometheus,
        }
    }

    pub fn target(&self) -> Millionths {
        match self {
            MetricTarget::Cpu { target_utilization }
            | MetricTarget::Memory { target_utilization } => *target_utilization,
            MetricTarget::Prometheus { target, .. } => *target,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MetricKind {
    Cpu,
    Memory,
    Prometheus,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Cpu => "cpu",
            MetricKind::Memory => "memory",
            MetricKind::Prometheus => "prometheus",
        }
    }
}

/// Kubernetes's `HPAScalingPolicyType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RateKind {
    /// At most `value` instances per period.
    Pods,
    /// At most `value` % of the instances at the period's start, per period.
    Percent,
}

impl RateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RateKind::Pods => "Pods",
            RateKind::Percent => "Percent",
        }
    }
}

/// One limit on how fast instances change (Kubernetes's `HPAScalingPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatePolicy {
    pub kind: RateKind,
    pub value: u32,
    pub period: Duration,
}

/// Which of several rate policies applies (Kubernetes's `selectPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectPolicy {
    /// The one allowing the largest change.
    Max,
    /// The one allowing the smallest change.
    Min,
    /// No change in this direction at all.
    Disabled,
}

impl SelectPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            SelectPolicy::Max => "Max",
            SelectPolicy::Min => "Min",
            SelectPolicy::Disabled => "Disabled",
        }
    }
}

/// How one direction of scaling behaves (Kubernetes's `HPAScalingRules`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingRules {
    /// Scale-up takes the lowest recommendation of this window, scale-down the highest.
    pub stabilization_window: Duration,
    pub policies: Vec<RatePolicy>,
    pub select: SelectPolicy,
}

impl ScalingRules {
    /// Kubernetes's default for scaling up: no window, +100 % or +4 instances per 15 s,
    /// whichever is more.
    pub fn default_up() -> ScalingRules {
        ScalingRules {
            stabilization_window: Duration::ZERO,
            policies: vec![
                RatePolicy { kind: RateKind::Percent, value: 100, period: Duration::from_secs(15) },
                RatePolicy { kind: RateKind::Pods, value: 4, period: Duration::from_secs(15) },
            ],
            select: SelectPolicy::Max,
        }
    }

    /// Kubernetes's default for scaling down: the highest recommendation of the last 300 s,
    /// then up to 100 % per 15 s.
    pub fn default_down() -> ScalingRules {
        ScalingRules {
            stabilization_window: Duration::from_secs(300),
            policies: vec![RatePolicy {
                kind: RateKind::Percent,
                value: 100,
                period: Duration::from_secs(15),
            }],
            select: SelectPolicy::Max,
        }
    }
}

/// An app's autoscaling policy (`PUT /corral/v1/apps/{id}/autoscaler`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoscalerPolicy {
    pub min: u32,
    pub max: u32,
    pub evaluation_interval: Duration,
    pub metrics: Vec<MetricTarget>,
    /// A metric within this fraction of its target asks for no change (Kubernetes: 0.1).
    pub tolerance: Millionths,
    pub scale_up: ScalingRules,
    pub scale_down: ScalingRules,
}

/// How far from its target one metric was, and what it alone would have asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricReading {
    pub metric: MetricKind,
    pub target: Millionths,
    /// The average over the instances counted (or the query's value), in millionths.
    pub value: Millionths,
    /// Ready instances that reported a sample.
    pub ready: u32,
    /// Starting or unhealthy instances: counted at 0 % when scaling up, else ignored.
    pub not_ready: u32,
    /// Ready instances without a sample: 0 % when scaling up, at target when scaling down.
    pub missing: u32,
    /// What this metric alone asks for.
    pub recommendation: u32,
}

/// What limited a scaling below (or above) what the metrics asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Limit {
    /// Nothing: the recommendation was taken as it was.
    None,
    /// The stabilization window held an earlier, more conservative recommendation.
    Stabilization { window: Duration },
    /// A rate policy (the one selected) allowed no more change in its period.
    Rate(RatePolicy),
    /// Scaling in this direction is disabled (`selectPolicy: Disabled`).
    Disabled,
    /// Clamped to the policy's `max`.
    Max,
    /// Clamped to the policy's `min`.
    Min,
}

/// Why the autoscaler leaves an app as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldReason {
    /// A deployment of the app runs; scaling now would cancel it.
    DeploymentRunning { deployment_id: crate::DeploymentId },
    /// No metric had a value to decide from.
    NoMetrics,
    /// Every metric is within the tolerance of its target (or the recommendation equals the
    /// current count).
    WithinTolerance,
    /// The metrics ask for a change but the stabilization window holds it back.
    Stabilized { window: Duration },
    /// The metrics ask for a change but the rate policies allow none now.
    RateLimited,
    /// The metrics ask for a change beyond the policy's bounds, where the app already is.
    AtBound,
    /// The app was scaled to zero by hand: the autoscaler leaves it so (as Kubernetes does).
    ScaledToZero,
}

/// One evaluation's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    Scale(Scaling),
    Hold(Hold),
}

impl Decision {
    pub fn current(&self) -> u32 {
        match self {
            Decision::Scale(scaling) => scaling.current,
            Decision::Hold(hold) => hold.current,
        }
    }

    /// The instance count the app should have after this decision.
    pub fn desired(&self) -> u32 {
        match self {
            Decision::Scale(scaling) => scaling.desired,
            Decision::Hold(hold) => hold.current,
        }
    }
}

/// A decision to change an app's instances: what `AutoscaleApp` carries and the state keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaling {
    pub inputs: Vec<MetricReading>,
    pub current: u32,
    /// The largest of the metrics' recommendations.
    pub recommended: u32,
    pub desired: u32,
    pub limited_by: Limit,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub inputs: Vec<MetricReading>,
    pub current: u32,
    /// The largest of the metrics' recommendations, when any metric had a value.
    pub recommended: Option<u32>,
    pub reason: HoldReason,
}

/// A scaling as applied: when, and in which deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedScaling {
    pub at: Timestamp,
    pub deployment_id: crate::DeploymentId,
    pub scaling: Scaling,
}

/// How many applied scalings an app keeps (for `/decisions` and the rate policies, whose
/// periods are far shorter than this many evaluations).
pub const MAX_RECORDED_SCALINGS: usize = 100;

/// A recommendation the leader's autoscaler computed for an app, as the log recorded it.
/// Only changes are recorded: a recommendation holds until the next one, so the window
/// is the same for every leader that reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    pub at: Timestamp,
    pub count: u32,
}

/// The most recommendations an app keeps, whatever its windows: at one evaluation a second
/// the longest window (3600 s) needs fewer, so this only bounds a misbehaving leader.
pub const MAX_RECORDED_RECOMMENDATIONS: usize = 4096;

/// An app's autoscaler: its policy and the scalings it applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Autoscaler {
    pub policy: AutoscalerPolicy,
    /// Oldest first; kept across policy changes.
    pub scalings: VecDeque<RecordedScaling>,
    /// The stabilization window's evidence, oldest first: each change of recommendation
    /// within the longest window, and the last one before it (it held into the window).
    pub recommendations: VecDeque<Recommendation>,
}

impl Autoscaler {
    /// The latest recorded recommendation.
    pub fn recommendation(&self) -> Option<u32> {
        self.recommendations.back().map(|recommendation| recommendation.count)
    }
}
