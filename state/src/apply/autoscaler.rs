//! Autoscaling policies and the scalings the leader's autoscaler decides. A scaling is
//! checked again here against the state it lands on: the count it started from must still
//! be the app's, no deployment may run, and the bounds and rate limits must allow it — so
//! a decision taken twice (by a deposed leader and its successor) scales once.

use super::{require_leader, require_operator};
use crate::autoscale::allowed_range;
use crate::cluster::ClusterState;
use crate::model::{
    Autoscaler, AutoscalerPolicy, MetricTarget, Recommendation, RecordedScaling, Scaling,
    ScalingRules, SelectPolicy, MAX_RECORDED_RECOMMENDATIONS, MAX_RECORDED_SCALINGS,
};
use crate::Timestamp;
use crate::{AppId, DeploymentId, Entry, Event, Force, Rejection};

/// The longest stabilization window and rate period (Kubernetes's limits).
const MAX_WINDOW_SECONDS: u64 = 3600;
const MAX_PERIOD_SECONDS: u64 = 1800;

impl ClusterState {
    pub(crate) fn put_autoscaler(
        &mut self,
        entry: &Entry,
        app_id: &AppId,
        policy: &AutoscalerPolicy,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        self.known_app(app_id)?;
        policy.validate().map_err(|(field, problem)| Rejection::invalid(&field, problem))?;
        let autoscaler =
            self.services.autoscalers.entry(app_id.clone()).or_insert_with(|| Autoscaler {
                policy: policy.clone(),
                scalings: Default::default(),
                recommendations: Default::default(),
            });
        autoscaler.policy = policy.clone();
        events.push(Event::AutoscalerUpdated {
            app_id: app_id.clone(),
            policy: Box::new(policy.clone()),
        });
        Ok(())
    }

    pub(crate) fn delete_autoscaler(
        &mut self,
        entry: &Entry,
        app_id: &AppId,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_operator(entry)?;
        if self.services.autoscalers.remove(app_id).is_none() {
            return Err(Rejection::invalid("app_id", format!("app {app_id} has no autoscaler")));
        }
        events.push(Event::AutoscalerDeleted { app_id: app_id.clone() });
        Ok(())
    }

    pub(crate) fn autoscale_app(
        &mut self,
        entry: &Entry,
        app_id: &AppId,
        scaling: &Scaling,
        deployment_id: &DeploymentId,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_leader(entry)?;
        self.unused_deployment_id(deployment_id)?;
        let instances = self.known_app(app_id)?.spec.instances;
        let autoscaler = self.services.autoscalers.get(app_id).ok_or_else(|| {
            Rejection::invalid("app_id", format!("app {app_id} has no autoscaler"))
        })?;
        self.unlocked(app_id, Force::No)?;
        if scaling.current != instances {
            return Err(Rejection::invalid(
                "scaling.current",
                format!("app {app_id} has {instances} instances, not {}", scaling.current),
            ));
        }
        if scaling.desired == instances {
            return Err(Rejection::invalid("scaling.desired", "is the current instance count"));
        }
        let scalings: Vec<RecordedScaling> = autoscaler.scalings.iter().cloned().collect();
        let (lowest, highest) = allowed_range(&autoscaler.policy, instances, &scalings, self.now);
        if scaling.desired < lowest || scaling.desired > highest {
            return Err(Rejection::invalid(
                "scaling.desired",
                format!(
                    "{} is outside what the policy allows now from {instances}: {lowest} to {highest}",
                    scaling.desired
                ),
            ));
        }
        self.scale_app(app_id, scaling.desired, deployment_id, events)?;
        let recorded = RecordedScaling {
            at: self.now,
            deployment_id: deployment_id.clone(),
            scaling: scaling.clone(),
        };
        let autoscaler = self
            .services
            .autoscalers
            .get_mut(app_id)
            .expect("checked above, and scaling an app keeps its autoscaler");
        autoscaler.scalings.push_back(recorded.clone());
        while autoscaler.scalings.len() > MAX_RECORDED_SCALINGS {
            autoscaler.scalings.pop_front();
        }
        // The recommendation it acted on is the window's too (the AppAutoscaled event says it).
        if autoscaler.recommendation() != Some(scaling.recommended) {
            autoscaler.record(Recommendation { at: self.now, count: scaling.recommended });
        }
        // Before the deployment's events in the log, so a reader meets the reason first.
        let at = events
            .iter()
            .position(|event| matches!(event, Event::AppUpdated { .. }))
            .unwrap_or(events.len());
        events.insert(
            at,
            Event::AppAutoscaled { app_id: app_id.clone(), scaling: Box::new(recorded) },
        );
        Ok(())
    }

    pub(crate) fn record_recommendation(
        &mut self,
        entry: &Entry,
        app_id: &AppId,
        count: u32,
        events: &mut Vec<Event>,
    ) -> Result<(), Rejection> {
        require_leader(entry)?;
        let now = self.now;
        let autoscaler = self.services.autoscalers.get_mut(app_id).ok_or_else(|| {
            Rejection::invalid("app_id", format!("app {app_id} has no autoscaler"))
        })?;
        if autoscaler.recommendation() == Some(count) {
            return Err(Rejection::invalid("count", "is the latest recorded recommendation"));
        }
        let recommendation = Recommendation { at: now, count };
        autoscaler.record(recommendation);
        events.push(Event::AutoscalerRecommended { app_id: app_id.clone(), recommendation });
        Ok(())
    }
}

impl Autoscaler {
    /// Appends a recommendation and forgets what no window can reach any more: those before
    /// the longest window but the last of them, which was in force at the window's start.
    fn record(&mut self, recommendation: Recommendation) {
        let longest = self
            .policy
            .scale_up
            .stabilization_window
            .max(self.policy.scale_down.stabilization_window);
        let longest = u64::try_from(longest.as_nanos()).unwrap_or(u64::MAX);
        let cutoff = Timestamp(recommendation.at.0.saturating_sub(longest));
        self.recommendations.push_back(recommendation);
        while self.recommendations.get(1).is_some_and(|second| second.at <= cutoff)
            || self.recommendations.len() > MAX_RECORDED_RECOMMENDATIONS
        {
            self.recommendations.pop_front();
        }
    }
}

impl AutoscalerPolicy {
    /// Checks a policy, naming the offending field as the native API spells it.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let fail = |field: &str, problem: &str| Err((field.to_owned(), problem.to_owned()));
        if self.min < 1 {
            return fail("min", "must be at least 1");
        }
        if self.max < self.min {
            return fail("max", "must not be below min");
        }
        if self.evaluation_interval.as_millis() < 1000 {
            return fail("evaluationIntervalSeconds", "must be at least 1");
        }
        if self.metrics.is_empty() {
            return fail("metrics", "must name at least one metric");
        }
        for (index, metric) in self.metrics.iter().enumerate() {
            let field = |name: &str| format!("metrics[{index}].{name}");
            let (name, target) = match metric {
                MetricTarget::Cpu { target_utilization }
                | MetricTarget::Memory { target_utilization } => {
                    ("targetUtilization", *target_utilization)
                }
                MetricTarget::Prometheus { url, query, target } => {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err((
                            field("url"),
                            "must be an http:// or https:// URL".to_owned(),
                        ));
                    }
                    if query.trim().is_empty() {
                        return Err((field("query"), "must not be empty".to_owned()));
                    }
                    ("target", *target)
                }
            };
            if target.0 == 0 {
                return Err((field(name), "must be above 0".to_owned()));
            }
        }
        if self.tolerance.0 >= 1_000_000 {
            return fail("tolerance", "must be below 1");
        }
        validate_rules("scaleUp", &self.scale_up)?;
        validate_rules("scaleDown", &self.scale_down)
    }
}

fn validate_rules(name: &str, rules: &ScalingRules) -> Result<(), (String, String)> {
    if rules.stabilization_window.as_secs() > MAX_WINDOW_SECONDS {
        return Err((
            format!("{name}.stabilizationWindowSeconds"),
            format!("must be at most {MAX_WINDOW_SECONDS}"),
        ));
    }
    if rules.policies.is_empty() && rules.select != SelectPolicy::Disabled {
        return Err((
            format!("{name}.policies"),
            "must hold at least one policy unless selectPolicy is Disabled".to_owned(),
        ));
    }
    for (index, policy) in rules.policies.iter().enumerate() {
        if policy.value == 0 {
            return Err((format!("{name}.policies[{index}].value"), "must be above 0".to_owned()));
        }
        let period = policy.period.as_secs();
        if policy.period.subsec_nanos() != 0 || !(1..=MAX_PERIOD_SECONDS).contains(&period) {
            return Err((
                format!("{name}.policies[{index}].periodSeconds"),
                format!("must be a whole number from 1 to {MAX_PERIOD_SECONDS}"),
            ));
        }
    }
    Ok(())
}
