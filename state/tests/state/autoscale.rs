//! The autoscaler's pure decision: given exactly these measurements, this history and this
//! policy, exactly this decision.

use std::time::Duration;

use corral_state::autoscale::{
    allowed_range, decide, Evaluation, InstanceSample, MetricSample, Readiness, Recommendation,
};
use corral_state::model::{
    AutoscalerPolicy, Decision, Hold, HoldReason, Limit, MetricKind, MetricReading, MetricTarget,
    Millionths, RateKind, RatePolicy, RecordedScaling, Scaling, ScalingRules, SelectPolicy,
};
use corral_state::{DeploymentId, Timestamp};
use proptest::prelude::*;

const NOW: Timestamp = Timestamp::from_secs(10_000);

fn percent(value: u64) -> Millionths {
    Millionths::from_percent(value)
}

/// CPU at 50 %, Kubernetes's defaults otherwise.
pub(super) fn policy(min: u32, max: u32) -> AutoscalerPolicy {
    AutoscalerPolicy {
        min,
        max,
        evaluation_interval: Duration::from_secs(15),
        metrics: vec![MetricTarget::Cpu { target_utilization: percent(50) }],
        tolerance: Millionths(100_000),
        scale_up: ScalingRules::default_up(),
        scale_down: ScalingRules::default_down(),
    }
}

fn ready(utilization: u64) -> InstanceSample {
    InstanceSample { readiness: Readiness::Ready, utilization: Some(percent(utilization)) }
}

fn starting() -> InstanceSample {
    InstanceSample { readiness: Readiness::NotReady, utilization: None }
}

fn unsampled() -> InstanceSample {
    InstanceSample { readiness: Readiness::Ready, utilization: None }
}

/// One instance was recommended an hour ago and nothing else since: a window that holds
/// nothing back.
const SETTLED: [Recommendation; 1] = [Recommendation { at: Timestamp::from_secs(6_400), count: 1 }];

fn evaluation<'a>(
    policy: &'a AutoscalerPolicy,
    current: u32,
    samples: &'a [MetricSample],
) -> Evaluation<'a> {
    let ready = match samples.first() {
        Some(MetricSample::PerInstance(instances)) => {
            instances.iter().filter(|i| i.readiness == Readiness::Ready).count() as u32
        }
        _ => current,
    };
    Evaluation {
        policy,
        now: NOW,
        current,
        ready,
        deployment: None,
        samples,
        history: &SETTLED,
        scalings: &[],
    }
}

fn cpu(value: u64, ready: u32, not_ready: u32, missing: u32, recommendation: u32) -> MetricReading {
    MetricReading {
        metric: MetricKind::Cpu,
        target: percent(50),
        value: percent(value),
        ready,
        not_ready,
        missing,
        recommendation,
    }
}

fn recorded(seconds_ago: u64, current: u32, desired: u32) -> RecordedScaling {
    RecordedScaling {
        at: Timestamp::from_secs(NOW.0 / 1_000_000_000 - seconds_ago),
        deployment_id: DeploymentId::new("d"),
        scaling: Scaling {
            inputs: Vec::new(),
            current,
            recommended: desired,
            desired,
            limited_by: Limit::None,
        },
    }
}

#[test]
fn busy_instances_scale_up_by_the_ratio_to_the_target() {
    let policy = policy(1, 10);
    let samples = [MetricSample::PerInstance(vec![ready(100), ready(100)])];
    assert_eq!(
        decide(&evaluation(&policy, 2, &samples)),
        Decision::Scale(Scaling {
            inputs: vec![cpu(100, 2, 0, 0, 4)],
            current: 2,
            recommended: 4,
            desired: 4,
            limited_by: Limit::None,
        })
    );
}

#[test]
fn a_metric_within_tolerance_asks_for_nothing() {
    let policy = policy(1, 10);
    let samples = [MetricSample::PerInstance(vec![ready(54), ready(55)])];
    assert_eq!(
        decide(&evaluation(&policy, 2, &samples)),
        Decision::Hold(Hold {
            inputs: vec![MetricReading { value: Millionths(545_000), ..cpu(0, 2, 0, 0, 2) }],
            current: 2,
            recommended: Some(2),
            reason: HoldReason::WithinTolerance,
        })
    );
}

#[test]
fn starting_instances_count_as_idle_when_scaling_up() {
    let policy = policy(1, 10);
    // One busy instance and one starting: 100 % over two is the target, so no overshoot.
    let samples = [MetricSample::PerInstance(vec![ready(100), starting()])];
    assert_eq!(
        decide(&evaluation(&policy, 2, &samples)),
        Decision::Hold(Hold {
            inputs: vec![cpu(100, 1, 1, 0, 2)],
            current: 2,
            recommended: Some(2),
            reason: HoldReason::WithinTolerance,
        })
    );
    // 150 % over two is 75 %: three instances, not the four the busy one alone asks for.
    let samples = [MetricSample::PerInstance(vec![ready(150), starting()])];
    let Decision::Scale(scaling) = decide(&evaluation(&policy, 2, &samples)) else {
        panic!("expected a scaling")
    };
    assert_eq!((scaling.recommended, scaling.desired), (3, 3));
}

#[test]
fn starting_instances_are_ignored_when_scaling_down() {
    let policy = policy(1, 10);
    let samples = [MetricSample::PerInstance(vec![ready(10), ready(10), starting(), starting()])];
    assert_eq!(
        decide(&evaluation(&policy, 4, &samples)),
        Decision::Scale(Scaling {
            inputs: vec![cpu(10, 2, 2, 0, 1)],
            current: 4,
            recommended: 1,
            desired: 1,
            limited_by: Limit::None,
        })
    );
}

#[test]
fn a_ready_instance_without_a_sample_never_turns_the_direction() {
    let policy = policy(1, 10);
    // Scaling down, the unsampled one counts at 100 %: the average is then above target.
    let samples = [MetricSample::PerInstance(vec![ready(10), unsampled()])];
    assert_eq!(
        decide(&evaluation(&policy, 2, &samples)),
        Decision::Hold(Hold {
            inputs: vec![cpu(10, 1, 0, 1, 2)],
            current: 2,
            recommended: Some(2),
            reason: HoldReason::WithinTolerance,
        })
    );
    // Scaling up, it counts at 0 %: 200 % and 0 % make 100 %, four instances.
    let samples = [MetricSample::PerInstance(vec![ready(200), unsampled()])];
    assert_eq!(decide(&evaluation(&policy, 2, &samples)).desired(), 4);
}

#[test]
fn the_scale_down_window_keeps_the_highest_recent_recommendation() {
    let policy = policy(1, 10);
    let samples = [MetricSample::PerInstance(vec![ready(10); 4])];
    let history = [Recommendation { at: Timestamp::from_secs(9_900), count: 4 }];
    let held = Evaluation { history: &history, ..evaluation(&policy, 4, &samples) };
    assert_eq!(
        decide(&held),
        Decision::Hold(Hold {
            inputs: vec![cpu(10, 4, 0, 0, 1)],
            current: 4,
            recommended: Some(1),
            reason: HoldReason::Stabilized { window: Duration::from_secs(300) },
        })
    );
    let history = [
        Recommendation { at: Timestamp::from_secs(9_500), count: 4 },
        Recommendation { at: Timestamp::from_secs(9_650), count: 2 },
        Recommendation { at: Timestamp::from_secs(9_800), count: 3 },
    ];
    assert_eq!(
        decide(&Evaluation { history: &history, ..evaluation(&policy, 4, &samples) }),
        Decision::Scale(Scaling {
            inputs: vec![cpu(10, 4, 0, 0, 1)],
            current: 4,
            recommended: 1,
            desired: 3,
            limited_by: Limit::Stabilization { window: Duration::from_secs(300) },
        })
    );
}

#[test]
fn the_window_is_the_recorded_recommendations_each_holding_until_the_next() {
    let policy = policy(1, 10);
    let samples = [MetricSample::PerInstance(vec![ready(10); 4])];
    let stabilized = Decision::Hold(Hold {
        inputs: vec![cpu(10, 4, 0, 0, 1)],
        current: 4,
        recommended: Some(1),
        reason: HoldReason::Stabilized { window: Duration::from_secs(300) },
    });
    let at = |seconds, count| Recommendation { at: Timestamp::from_secs(seconds), count };
    // Nothing recorded (a new policy): the whole window counts as "stay".
    assert_eq!(
        decide(&Evaluation { history: &[], ..evaluation(&policy, 4, &samples) }),
        stabilized
    );
    // Recorded 10 s ago: the 290 s before it still count as "stay".
    let recent = [at(9_990, 1)];
    assert_eq!(
        decide(&Evaluation { history: &recent, ..evaluation(&policy, 4, &samples) }),
        stabilized
    );
    // 4 recorded long ago held until 1 was, 200 s ago: inside the window.
    let held = [at(9_000, 4), at(9_800, 1)];
    assert_eq!(
        decide(&Evaluation { history: &held, ..evaluation(&policy, 4, &samples) }),
        stabilized
    );
    // 1 in force since the window's start: down at once, whoever evaluates.
    let whole = [at(9_000, 4), at(9_700, 1)];
    assert_eq!(
        decide(&Evaluation { history: &whole, ..evaluation(&policy, 4, &samples) }).desired(),
        1
    );
    // Scaling up has no window by default: it ignores what was recorded.
    let busy = [MetricSample::PerInstance(vec![ready(100); 4])];
    let low = [at(9_990, 1)];
    assert_eq!(decide(&Evaluation { history: &low, ..evaluation(&policy, 4, &busy) }).desired(), 8);
}

#[test]
fn rate_policies_count_the_scalings_of_their_period() {
    let policy = policy(1, 100);
    let samples = [MetricSample::PerInstance(vec![ready(200); 10])];
    let rate = RatePolicy { kind: RateKind::Percent, value: 100, period: Duration::from_secs(15) };
    assert_eq!(
        decide(&evaluation(&policy, 10, &samples)),
        Decision::Scale(Scaling {
            inputs: vec![cpu(200, 10, 0, 0, 40)],
            current: 10,
            recommended: 40,
            desired: 20,
            limited_by: Limit::Rate(rate),
        })
    );
    // 5 → 10 five seconds ago: the period started at 5, so +100 % or +4 reach 10 at most.
    let scalings = [recorded(5, 5, 10)];
    let limited = Evaluation { scalings: &scalings, ..evaluation(&policy, 10, &samples) };
    let Decision::Hold(hold) = decide(&limited) else { panic!("expected a hold") };
    assert_eq!(hold.reason, HoldReason::RateLimited);
    // Twenty seconds ago, it is out of the period.
    let scalings = [recorded(20, 5, 10)];
    let free = Evaluation { scalings: &scalings, ..evaluation(&policy, 10, &samples) };
    assert_eq!(decide(&free).desired(), 20);
    // From 2, +4 instances beats +100 %.
    let small = [MetricSample::PerInstance(vec![ready(500); 2])];
    let Decision::Scale(scaling) = decide(&evaluation(&policy, 2, &small)) else {
        panic!("expected a scaling")
    };
    assert_eq!(scaling.desired, 6);
    assert_eq!(
        scaling.limited_by,
        Limit::Rate(RatePolicy { kind: RateKind::Pods, value: 4, period: Duration::from_secs(15) })
    );
}

#[test]
fn a_disabled_direction_never_moves() {
    let mut policy = policy(1, 10);
    policy.scale_down.select = SelectPolicy::Disabled;
    let samples = [MetricSample::PerInstance(vec![ready(1); 4])];
    let Decision::Hold(hold) = decide(&evaluation(&policy, 4, &samples)) else {
        panic!("expected a hold")
    };
    assert_eq!(hold.reason, HoldReason::RateLimited);
}

#[test]
fn the_bounds_clamp_and_bring_an_app_back_inside() {
    let policy = policy(2, 3);
    let samples = [MetricSample::PerInstance(vec![ready(100), ready(100)])];
    assert_eq!(
        decide(&evaluation(&policy, 2, &samples)),
        Decision::Scale(Scaling {
            inputs: vec![cpu(100, 2, 0, 0, 4)],
            current: 2,
            recommended: 4,
            desired: 3,
            limited_by: Limit::Max,
        })
    );
    let samples = [MetricSample::PerInstance(vec![ready(100); 3])];
    let Decision::Hold(hold) = decide(&evaluation(&policy, 3, &samples)) else {
        panic!("expected a hold")
    };
    assert_eq!(hold.reason, HoldReason::AtBound);
    // Below min, whatever the metrics (none here).
    let none = [MetricSample::PerInstance(vec![starting()])];
    assert_eq!(
        decide(&evaluation(&policy, 1, &none)),
        Decision::Scale(Scaling {
            inputs: Vec::new(),
            current: 1,
            recommended: 1,
            desired: 2,
            limited_by: Limit::Min,
        })
    );
}

#[test]
fn nothing_happens_during_a_deployment_or_at_zero_or_without_metrics() {
    let policy = policy(1, 10);
    let samples = [MetricSample::PerInstance(vec![ready(100), ready(100)])];
    let deployment_id = DeploymentId::new("d-1");
    let deploying =
        Evaluation { deployment: Some(&deployment_id), ..evaluation(&policy, 2, &samples) };
    assert_eq!(
        decide(&deploying),
        Decision::Hold(Hold {
            inputs: Vec::new(),
            current: 2,
            recommended: None,
            reason: HoldReason::DeploymentRunning { deployment_id: deployment_id.clone() },
        })
    );
    let Decision::Hold(hold) = decide(&evaluation(&policy, 0, &[])) else {
        panic!("expected a hold")
    };
    assert_eq!(hold.reason, HoldReason::ScaledToZero);
    let starting_only = [MetricSample::PerInstance(vec![starting(), starting()])];
    let Decision::Hold(hold) = decide(&evaluation(&policy, 2, &starting_only)) else {
        panic!("expected a hold")
    };
    assert_eq!(hold.reason, HoldReason::NoMetrics);
}

#[test]
fn the_largest_recommendation_across_metrics_wins() {
    let mut policy = policy(1, 10);
    policy.metrics.push(MetricTarget::Memory { target_utilization: percent(50) });
    policy.metrics.push(MetricTarget::Prometheus {
        url: "http://127.0.0.1:9090".to_owned(),
        query: "sum(rate(requests[1m]))".to_owned(),
        target: Millionths::from_f64(100.0).expect("finite"),
    });
    let samples = [
        MetricSample::PerInstance(vec![ready(75), ready(75)]),
        MetricSample::PerInstance(vec![ready(100), ready(100)]),
        MetricSample::Whole(Millionths::from_f64(250.0)),
    ];
    let Decision::Scale(scaling) = decide(&evaluation(&policy, 2, &samples)) else {
        panic!("expected a scaling")
    };
    let recommendations: Vec<(MetricKind, u32)> =
        scaling.inputs.iter().map(|r| (r.metric, r.recommendation)).collect();
    assert_eq!(
        recommendations,
        [(MetricKind::Cpu, 3), (MetricKind::Memory, 4), (MetricKind::Prometheus, 5)]
    );
    assert_eq!((scaling.recommended, scaling.desired), (5, 5));
}

#[test]
fn allowed_range_is_what_the_rates_and_bounds_permit() {
    let policy = policy(2, 30);
    assert_eq!(allowed_range(&policy, 10, &[], NOW), (2, 20));
    assert_eq!(allowed_range(&policy, 10, &[recorded(5, 5, 10)], NOW), (2, 10));
    assert_eq!(allowed_range(&policy, 1, &[], NOW), (2, 2));
    assert_eq!(allowed_range(&policy, 40, &[], NOW), (30, 30));
}

fn arbitrary_rules() -> impl Strategy<Value = ScalingRules> {
    let rate = (any::<bool>(), 1u32..200, 1u64..120).prop_map(|(pods, value, period)| RatePolicy {
        kind: if pods { RateKind::Pods } else { RateKind::Percent },
        value,
        period: Duration::from_secs(period),
    });
    (0u64..600, proptest::collection::vec(rate, 1..3), 0u8..3).prop_map(
        |(window, policies, select)| ScalingRules {
            stabilization_window: Duration::from_secs(window),
            policies,
            select: [SelectPolicy::Max, SelectPolicy::Min, SelectPolicy::Disabled]
                [usize::from(select)],
        },
    )
}

fn arbitrary_policy() -> impl Strategy<Value = AutoscalerPolicy> {
    (1u32..6, 0u32..20, 1u64..200, 0u64..300_000, arbitrary_rules(), arbitrary_rules()).prop_map(
        |(min, spread, target, tolerance, scale_up, scale_down)| AutoscalerPolicy {
            min,
            max: min + spread,
            evaluation_interval: Duration::from_secs(15),
            metrics: vec![
                MetricTarget::Cpu { target_utilization: percent(target) },
                MetricTarget::Prometheus {
                    url: "http://p".to_owned(),
                    query: "q".to_owned(),
                    target: Millionths(target * 1_000_000),
                },
            ],
            tolerance: Millionths(tolerance),
            scale_up,
            scale_down,
        },
    )
}

fn arbitrary_sample() -> impl Strategy<Value = InstanceSample> {
    (any::<bool>(), proptest::option::of(0u64..400)).prop_map(|(is_ready, utilization)| {
        InstanceSample {
            readiness: if is_ready { Readiness::Ready } else { Readiness::NotReady },
            utilization: utilization.map(percent),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn decisions_stay_in_bounds_respect_deployments_and_repeat(
        policy in arbitrary_policy(),
        current in 0u32..30,
        instances in proptest::collection::vec(arbitrary_sample(), 0..30),
        whole in proptest::option::of(0u64..1_000),
        deploying in any::<bool>(),
        history in proptest::collection::vec((0u64..1_000, 0u32..40), 0..8),
        scalings in proptest::collection::vec((0u64..200, 0u32..30, 0u32..30), 0..4),
    ) {
        let samples = [
            MetricSample::PerInstance(instances.clone()),
            MetricSample::Whole(whole.map(|value| Millionths(value * 1_000_000))),
        ];
        let history: Vec<Recommendation> = history
            .into_iter()
            .map(|(ago, count)| Recommendation { at: Timestamp::from_secs(10_000 - ago), count })
            .collect();
        let scalings: Vec<RecordedScaling> = scalings
            .into_iter()
            .map(|(ago, from, to)| recorded(ago, from, to))
            .collect();
        let deployment_id = DeploymentId::new("d-1");
        let evaluation = Evaluation {
            policy: &policy,
            now: NOW,
            current,
            ready: instances.iter().filter(|i| i.readiness == Readiness::Ready).count() as u32,
            deployment: deploying.then_some(&deployment_id),
            samples: &samples,
            history: &history,
            scalings: &scalings,
        };
        let decision = decide(&evaluation);
        prop_assert_eq!(&decision, &decide(&evaluation), "the same inputs decide the same");
        match &decision {
            Decision::Scale(scaling) => {
                prop_assert!(!deploying, "scaled during a deployment: {:?}", scaling);
                prop_assert!(policy.min <= scaling.desired && scaling.desired <= policy.max);
                prop_assert_ne!(scaling.desired, scaling.current);
                prop_assert_eq!(scaling.current, current);
                // What the leader decides, the state accepts when it applies it.
                let (lowest, highest) = allowed_range(&policy, current, &scalings, NOW);
                prop_assert!(lowest <= scaling.desired && scaling.desired <= highest,
                    "{} outside the allowed {}..={}", scaling.desired, lowest, highest);
            }
            Decision::Hold(hold) => {
                prop_assert_eq!(hold.current, current);
                if deploying {
                    let running = matches!(hold.reason, HoldReason::DeploymentRunning { .. });
                    prop_assert!(running);
                }
            }
        }
    }
}

mod commands {
    use std::time::Duration;

    use corral_state::autoscale::{decide, Evaluation, MetricSample, Recommendation};
    use corral_state::model::{Decision, HoldReason, Limit, RecordedScaling, Scaling};
    use corral_state::{
        Actor, AppId, Cancellation, ClusterState, Command, DeploymentId, Event, Force, PutMode,
        Rejection, Timestamp,
    };

    use super::super::support::{spec, World};
    use super::{policy, ready};

    fn web() -> AppId {
        AppId::new("/web")
    }

    /// `/web` at `instances`, its start deployment abandoned so nothing holds it.
    fn world_with_web(instances: u32) -> World {
        let mut world = World::new();
        world.operator(Command::PutApp {
            app_id: web(),
            spec: spec(instances),
            definition: r#"{"cmd":"burn"}"#.to_owned(),
            mode: PutMode::CreateOrReplace,
            force: Force::No,
            deployment_id: DeploymentId::new("start"),
        });
        abandon(&mut world, "start");
        world
    }

    fn abandon(world: &mut World, deployment_id: &str) {
        world.operator(Command::CancelDeployment {
            deployment_id: DeploymentId::new(deployment_id),
            cancellation: Cancellation::Abandon,
        });
    }

    fn scale(current: u32, desired: u32, deployment_id: &str) -> Command {
        Command::AutoscaleApp {
            app_id: web(),
            scaling: Scaling {
                inputs: Vec::new(),
                current,
                recommended: desired,
                desired,
                limited_by: Limit::None,
            },
            deployment_id: DeploymentId::new(deployment_id),
        }
    }

    fn instances(world: &World) -> u32 {
        world.state.services().app(&web()).expect("the app exists").spec.instances
    }

    #[test]
    fn a_policy_needs_its_app_and_valid_fields() {
        let mut world = World::new();
        let put = Command::PutAutoscaler { app_id: web(), policy: policy(1, 4) };
        assert_eq!(world.rejected(Actor::Leader, put.clone()), Rejection::UnknownApp(web()));
        let mut world = world_with_web(1);
        let bad = Command::PutAutoscaler { app_id: web(), policy: policy(3, 2) };
        assert_eq!(
            world.rejected(Actor::Leader, bad),
            Rejection::invalid("max", "must not be below min")
        );
        assert_eq!(
            world.operator(put),
            [Event::AutoscalerUpdated { app_id: web(), policy: Box::new(policy(1, 4)) }]
        );
    }

    #[test]
    fn a_scaling_scales_like_marathon_and_is_recorded_first() {
        let mut world = world_with_web(1);
        world.operator(Command::PutAutoscaler { app_id: web(), policy: policy(1, 4) });
        let events = world.leader(scale(1, 2, "auto-1"));
        let kinds: Vec<&str> = events.iter().map(Event::kind).collect();
        assert_eq!(kinds, ["app_autoscaled", "app_updated", "deployment_started"]);
        let Event::DeploymentStarted { deployment } = &events[2] else { unreachable!() };
        assert_eq!(deployment.action.as_marathon_str(), "ScaleApplication");
        assert_eq!(instances(&world), 2);
        let recorded: Vec<&RecordedScaling> =
            world.state.services().autoscalers[&web()].scalings.iter().collect();
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].deployment_id, DeploymentId::new("auto-1"));
        // Policies and scalings survive a snapshot and the command its encoding.
        let bytes = world.state.snapshot().expect("encodes");
        let restored = corral_state::ClusterState::from_snapshot(&bytes).expect("decodes");
        assert_eq!(restored.digest(), world.state.digest());
        let entry = world.entry(Actor::Leader, scale(2, 3, "auto-2"));
        let encoded = corral_state::codec::encode_entry(&entry).expect("encodes");
        assert_eq!(corral_state::codec::decode_entry(&encoded).expect("decodes"), entry);
    }

    #[test]
    fn a_repeated_or_stale_decision_scales_once() {
        let mut world = world_with_web(1);
        world.operator(Command::PutAutoscaler { app_id: web(), policy: policy(1, 10) });
        world.leader(scale(1, 2, "auto-1"));
        // A second leader's copy of the same decision lands while the scaling deploys...
        assert!(matches!(
            world.rejected(Actor::Leader, scale(1, 2, "auto-2")),
            Rejection::AppLocked { .. }
        ));
        // ...or after it finished: it started from a count the app no longer has.
        abandon(&mut world, "auto-1");
        assert_eq!(
            world.rejected(Actor::Leader, scale(1, 2, "auto-3")),
            Rejection::invalid("scaling.current", "app /web has 2 instances, not 1")
        );
        assert_eq!(instances(&world), 2);
    }

    #[test]
    fn rates_and_bounds_are_checked_again_when_applied() {
        let mut world = world_with_web(1);
        world.operator(Command::PutAutoscaler { app_id: web(), policy: policy(1, 10) });
        world.leader(scale(1, 2, "auto-1"));
        abandon(&mut world, "auto-1");
        // The period began at 1: +100 % or +4 reach 5 at most.
        assert_eq!(
            world.rejected(Actor::Leader, scale(2, 9, "auto-2")),
            Rejection::invalid(
                "scaling.desired",
                "9 is outside what the policy allows now from 2: 1 to 5"
            )
        );
        world.advance(std::time::Duration::from_secs(16));
        world.leader(scale(2, 4, "auto-3"));
        abandon(&mut world, "auto-3");
        assert_eq!(
            world.rejected(Actor::Leader, scale(4, 11, "auto-4")),
            Rejection::invalid(
                "scaling.desired",
                "11 is outside what the policy allows now from 4: 1 to 6"
            )
        );
        let operator = Actor::Operator { principal: None };
        assert!(matches!(
            world.rejected(operator, scale(4, 5, "auto-5")),
            Rejection::NotPermitted { .. }
        ));
    }

    fn recommend(count: u32) -> Command {
        Command::RecordRecommendation { app_id: web(), count }
    }

    fn window(world: &World) -> Vec<Recommendation> {
        world.state.services().autoscalers[&web()].recommendations.iter().copied().collect()
    }

    #[test]
    fn a_recommendation_is_recorded_when_it_changes_and_kept_while_a_window_needs_it() {
        let mut world = world_with_web(4);
        world.operator(Command::PutAutoscaler { app_id: web(), policy: policy(1, 10) });
        let start = world.clock;
        let at =
            |seconds| Recommendation { at: start.plus(Duration::from_secs(seconds)), count: 0 };
        let four = Recommendation { count: 4, ..at(0) };
        assert_eq!(
            world.leader(recommend(4)),
            [Event::AutoscalerRecommended { app_id: web(), recommendation: four }]
        );
        // The same again is not news: the log stays small while nothing changes.
        assert_eq!(
            world.rejected(Actor::Leader, recommend(4)),
            Rejection::invalid("count", "is the latest recorded recommendation")
        );
        assert!(matches!(
            world.rejected(Actor::Operator { principal: None }, recommend(2)),
            Rejection::NotPermitted { .. }
        ));
        world.advance(Duration::from_secs(100));
        let one = Recommendation { count: 1, ..at(100) };
        assert_eq!(
            world.leader(recommend(1)),
            [Event::AutoscalerRecommended { app_id: web(), recommendation: one }]
        );
        // 400 s in, the 300 s window starts at 100: 4 ended before it and is forgotten, 1
        // was in force at its start and is kept.
        world.advance(Duration::from_secs(300));
        world.leader(recommend(2));
        let two = Recommendation { count: 2, ..at(400) };
        assert_eq!(window(&world), [one, two]);
        // A scaling records the recommendation it acted on, without an event of its own.
        let events = world.leader(Command::AutoscaleApp {
            app_id: web(),
            scaling: Scaling {
                inputs: Vec::new(),
                current: 4,
                recommended: 3,
                desired: 3,
                limited_by: Limit::None,
            },
            deployment_id: DeploymentId::new("auto-1"),
        });
        let kinds: Vec<&str> = events.iter().map(Event::kind).collect();
        assert_eq!(kinds, ["app_autoscaled", "app_updated", "deployment_started"]);
        assert_eq!(window(&world), [one, two, Recommendation { count: 3, ..at(400) }]);
        world.operator(Command::DeleteAutoscaler { app_id: web() });
        assert_eq!(
            world.rejected(Actor::Leader, recommend(1)),
            Rejection::invalid("app_id", "app /web has no autoscaler")
        );
    }

    /// What a leader decides for idle instances at `now`, from the state alone.
    fn decision_at(state: &ClusterState, now: Timestamp) -> Decision {
        let autoscaler = &state.services().autoscalers[&web()];
        let history: Vec<Recommendation> = autoscaler.recommendations.iter().copied().collect();
        let samples = [MetricSample::PerInstance(vec![ready(10); 4])];
        decide(&Evaluation {
            policy: &autoscaler.policy,
            now,
            current: 4,
            ready: 4,
            deployment: None,
            samples: &samples,
            history: &history,
            scalings: &[],
        })
    }

    #[test]
    fn a_new_leader_resumes_the_window_where_the_old_one_left_it() {
        let mut world = world_with_web(4);
        world.operator(Command::PutAutoscaler { app_id: web(), policy: policy(1, 10) });
        // The old leader saw load (4), then none (1) from `quiet` on...
        world.leader(recommend(4));
        world.advance(Duration::from_secs(100));
        let quiet = world.clock;
        world.leader(recommend(1));
        // ...and dies 150 s later. Its successor replays the same log.
        let replica = ClusterState::from_snapshot(&world.state.snapshot().expect("encodes"))
            .expect("decodes");
        let window = Duration::from_secs(300);
        let stabilized = HoldReason::Stabilized { window };
        for state in [&world.state, &replica] {
            let Decision::Hold(hold) = decision_at(state, quiet.plus(Duration::from_secs(150)))
            else {
                panic!("scaled down inside the window")
            };
            assert_eq!(hold.reason, stabilized);
            // Not earlier: one second short of a whole window after the load stopped, held...
            let Decision::Hold(hold) =
                decision_at(state, quiet.plus(window - Duration::from_secs(1)))
            else {
                panic!("scaled down inside the window")
            };
            assert_eq!(hold.reason, stabilized);
            // ...and not later: once the window is all quiet, down (a whole window after
            // the successor took over would be 150 s later).
            assert_eq!(decision_at(state, quiet.plus(window)).desired(), 1);
        }
    }

    #[test]
    fn deleting_the_app_deletes_its_autoscaler() {
        let mut world = world_with_web(1);
        world.operator(Command::PutAutoscaler { app_id: web(), policy: policy(1, 4) });
        let events = world.operator(Command::DeleteApp {
            app_id: web(),
            force: Force::No,
            deployment_id: DeploymentId::new("stop"),
        });
        assert!(events.contains(&Event::AutoscalerDeleted { app_id: web() }));
        assert!(world.state.services().autoscalers.is_empty());
        assert_eq!(
            world.rejected(Actor::Leader, Command::DeleteAutoscaler { app_id: web() }),
            Rejection::invalid("app_id", "app /web has no autoscaler")
        );
    }
}
