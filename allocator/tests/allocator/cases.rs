//! Given / when / then: suppression, revival, filters, agent modes, minimum allocatable
//! resources, offer caps, reservations, determinism.

use std::time::Duration;

use corral_allocator::{Allocator, AllocatorConfig, Reason};
use corral_state::model::Filters;
use corral_state::{Actor, Command, Quantities, Scalar};

use super::support::{res, role, Cluster};

#[test]
fn a_suppressed_role_gets_nothing_until_revived() {
    let mut cluster = Cluster::default();
    cluster.add_agent("cpus:4;mem:4096");
    let framework = cluster.subscribe("web", &["web"]);
    cluster.suppress(&framework, &["web"]);

    assert!(cluster.cycle().is_empty());
    let explanation = cluster.allocator.explain_framework(&framework).expect("known framework");
    assert!(explanation.reasons.contains(&Reason::Suppressed { role: role("web") }));
    let role_explanation = cluster.allocator.explain_role(&role("web")).expect("known role");
    assert_eq!(role_explanation.suppressed_by, vec![framework.clone()]);

    cluster.revive(&framework, &["web"]);
    let offers = cluster.cycle();
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].framework_id, framework);
}

#[test]
fn a_declined_agent_comes_back_when_the_filter_expires() {
    let mut cluster = Cluster::default();
    cluster.add_agent("cpus:4;mem:4096");
    let framework = cluster.subscribe("web", &["web"]);
    let offers = cluster.cycle();
    cluster.decline(&offers[0], Filters::DEFAULT_REFUSE);

    cluster.advance(Duration::from_millis(4_999));
    assert!(cluster.cycle().is_empty(), "re-offered before the 5 s filter expired");
    let explanation = cluster.allocator.explain_framework(&framework).expect("known framework");
    assert_eq!(explanation.agents_filtered_by_declines, 1);
    assert_eq!(explanation.agents_filtered_sample, vec![offers[0].agent_id.clone()]);
    assert!(explanation.reasons.contains(&Reason::DeclineFilters { agents: 1 }));

    cluster.advance(Duration::from_millis(1));
    assert_eq!(cluster.cycle().len(), 1);
}

#[test]
fn revive_clears_the_filters_of_declined_agents() {
    let mut cluster = Cluster::default();
    cluster.add_agent("cpus:4;mem:4096");
    let framework = cluster.subscribe("web", &["web"]);
    let offers = cluster.cycle();
    cluster.decline(&offers[0], Duration::from_secs(3600));
    assert!(cluster.cycle().is_empty());

    cluster.revive(&framework, &[]);

    assert_eq!(cluster.cycle().len(), 1);
}

#[test]
fn an_agent_declined_by_one_framework_goes_to_the_next() {
    let mut cluster = Cluster::default();
    let agent = cluster.add_agent("cpus:4;mem:4096");
    let first = cluster.subscribe("first", &["web"]);
    let second = cluster.subscribe("second", &["web"]);
    let offers = cluster.cycle();
    assert_eq!(offers[0].framework_id, first, "ties break by framework id");
    cluster.decline(&offers[0], Duration::from_secs(60));

    let offers = cluster.cycle();

    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].framework_id, second);
    assert_eq!(offers[0].agent_id, agent);
}

#[test]
fn draining_deactivated_and_gone_agents_are_not_offered() {
    let mut cluster = Cluster::default();
    let draining = cluster.add_agent("cpus:4;mem:4096");
    let deactivated = cluster.add_agent("cpus:4;mem:4096");
    let gone = cluster.add_agent("cpus:4;mem:4096");
    let healthy = cluster.add_agent("cpus:4;mem:4096");
    cluster.subscribe("web", &["web"]);
    cluster.operator(Command::DrainAgent {
        agent_id: draining.clone(),
        max_grace_period: None,
        mark_gone: false,
    });
    cluster.operator(Command::DeactivateAgent { agent_id: deactivated.clone() });
    cluster.operator(Command::MarkAgentGone { agent_id: gone });

    let offers = cluster.cycle();

    assert_eq!(
        offers.iter().map(|offer| offer.agent_id.clone()).collect::<Vec<_>>(),
        vec![healthy]
    );
    for offer in &offers {
        cluster.decline(offer, Duration::ZERO);
    }
    cluster.operator(Command::ReactivateAgent { agent_id: deactivated.clone() });
    let offers = cluster.cycle();
    assert!(offers.iter().any(|offer| offer.agent_id == deactivated));
    assert!(offers.iter().all(|offer| offer.agent_id != draining));
}

#[test]
fn a_disconnected_framework_is_offered_nothing() {
    let mut cluster = Cluster::default();
    cluster.add_agent("cpus:4;mem:4096");
    let gone_quiet = cluster.subscribe("quiet", &["web"]);
    let listening = cluster.subscribe("listening", &["web"]);
    cluster.ok(Actor::Leader, Command::DisconnectFramework { framework_id: gone_quiet.clone() });

    let offers = cluster.cycle();

    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].framework_id, listening);
    let explanation = cluster.allocator.explain_framework(&gone_quiet).expect("known framework");
    assert!(explanation.reasons.contains(&Reason::Disconnected));
}

#[test]
fn a_framework_not_subscribed_to_the_leader_is_offered_nothing_until_it_is() {
    let mut cluster = Cluster::default();
    cluster.add_agent("cpus:4;mem:4096");
    let elsewhere = cluster.subscribe("elsewhere", &["web"]);
    let here = cluster.subscribe("here", &["web"]);
    cluster.allocator.set_unsubscribed(|framework_id| *framework_id == here);

    let offers = cluster.cycle();

    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].framework_id, here);
    let explanation = cluster.allocator.explain_framework(&elsewhere).expect("known framework");
    assert!(explanation.reasons.contains(&Reason::NotSubscribedToLeader));
    assert!(!explanation.reasons.contains(&Reason::Disconnected));

    cluster.decline(&offers[0], Duration::from_secs(60));
    cluster.allocator.set_unsubscribed(|_| true);
    let offers = cluster.cycle();
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].framework_id, elsewhere);
}

#[test]
fn resources_below_every_minimum_stay_unoffered() {
    let mut cluster = Cluster::default();
    let crumbs = cluster.add_agent("cpus:0.005;mem:16");
    let framework = cluster.subscribe("web", &["web"]);

    let allocation = cluster.decide();

    assert!(allocation.offers.is_empty());
    assert_eq!(allocation.summary.agents_too_small, 1);
    assert_eq!(allocation.summary.agents_too_small_sample, vec![crumbs]);
    let explanation = cluster.allocator.explain_framework(&framework).expect("known framework");
    assert!(explanation.reasons.contains(&Reason::ResourcesTooSmall { agents: 1 }));
}

#[test]
fn either_default_minimum_is_enough() {
    let mut cluster = Cluster::default();
    cluster.add_agent("cpus:0.01;mem:1");
    cluster.add_agent("cpus:0.001;mem:32");
    cluster.subscribe("web", &["web"]);

    assert_eq!(cluster.cycle().len(), 2);
}

#[test]
fn a_configured_minimum_replaces_the_default() {
    let config = AllocatorConfig {
        min_allocatable: vec![Quantities::from_pairs(&[
            ("cpus", Scalar::from_units(1)),
            ("mem", Scalar::from_units(512)),
        ])],
        ..AllocatorConfig::default()
    };
    let mut cluster = Cluster::new(config);
    cluster.add_agent("cpus:0.5;mem:4096");
    cluster.add_agent("cpus:2;mem:256");
    let big_enough = cluster.add_agent("cpus:1;mem:512");
    cluster.subscribe("web", &["web"]);

    let offers = cluster.cycle();

    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].agent_id, big_enough);
}

#[test]
fn a_framework_gets_at_most_the_offer_cap_per_cycle() {
    let config =
        AllocatorConfig { max_offers_per_framework: Some(2), ..AllocatorConfig::default() };
    let mut cluster = Cluster::new(config);
    for _ in 0..5 {
        cluster.add_agent("cpus:4;mem:4096");
    }
    let framework = cluster.subscribe("web", &["web"]);

    let offers = cluster.cycle();

    assert_eq!(offers.len(), 2);
    let explanation = cluster.allocator.explain_framework(&framework).expect("known framework");
    assert!(explanation.reasons.contains(&Reason::OfferCapReached { cap: 2 }));
    assert_eq!(cluster.cycle().len(), 2, "the next cycle offers the remaining agents");
}

#[test]
fn the_cap_lets_the_next_framework_have_the_rest() {
    let config =
        AllocatorConfig { max_offers_per_framework: Some(1), ..AllocatorConfig::default() };
    let mut cluster = Cluster::new(config);
    for _ in 0..3 {
        cluster.add_agent("cpus:4;mem:4096");
    }
    cluster.subscribe("first", &["web"]);
    cluster.subscribe("second", &["web"]);

    let offers = cluster.cycle();

    assert_eq!(offers.len(), 2);
    assert_ne!(offers[0].framework_id, offers[1].framework_id);
}

#[test]
fn reserved_resources_reach_only_their_role_and_its_sub_roles() {
    let mut cluster = Cluster::default();
    cluster.add_agent("cpus:2;mem:1024;cpus(eng):4;mem(eng):2048");
    let ops = cluster.subscribe("ops", &["ops"]);
    let web = cluster.subscribe("web", &["eng/web"]);

    let offers = cluster.cycle();

    let web_offer = offers
        .iter()
        .find(|offer| offer.framework_id == web)
        .expect("eng/web is offered its reservation");
    assert!(web_offer.resources.contains(&res("cpus(eng):4;mem(eng):2048")));
    for offer in offers.iter().filter(|offer| offer.framework_id == ops) {
        assert!(offer.resources.iter().all(|resource| resource.reservation.role().is_none()));
    }
}

#[test]
fn a_reservation_with_no_framework_in_its_role_stays_unoffered() {
    let mut cluster = Cluster::default();
    cluster.add_agent("cpus(eng):4;mem(eng):2048");
    cluster.subscribe("ops", &["ops"]);

    assert!(cluster.cycle().is_empty());
}

#[test]
fn the_same_state_and_time_give_the_same_offers_byte_for_byte() {
    let mut cluster = Cluster::default();
    for number in 0..6 {
        cluster.add_agent(&format!(
            "cpus:{};mem:{};ports:[31000-31100]",
            2 + number,
            1024 * (number + 1)
        ));
    }
    for name in ["a", "b", "c"] {
        cluster.subscribe(name, &[name]);
    }
    let offers = cluster.cycle();
    cluster.launch_all(&offers[0]);
    cluster.decline(&offers[1], Duration::from_secs(30));

    let first = cluster.decide();
    let second = cluster.decide();
    let rebuilt = Allocator::from_state(AllocatorConfig::default(), &cluster.state)
        .allocate(&cluster.state, cluster.clock);

    let encode = |allocation: &corral_allocator::Allocation| format!("{:?}", allocation.offers);
    assert!(!first.offers.is_empty());
    assert_eq!(encode(&first), encode(&second));
    assert_eq!(encode(&first), encode(&rebuilt));
    cluster.assert_mirror_matches_state();
}

#[test]
fn an_unreachable_agent_is_not_offered() {
    let mut cluster = Cluster::default();
    let silent = cluster.add_agent("cpus:4;mem:4096");
    let talking = cluster.add_agent("cpus:4;mem:4096");
    cluster.subscribe("web", &["web"]);
    cluster.advance(Duration::from_secs(80));
    cluster
        .ok(Actor::Agent(talking.clone()), Command::AgentHeartbeat { agent_id: talking.clone() });
    cluster.ok(Actor::Leader, Command::Tick);
    assert!(!cluster.state.agent(&silent).expect("known agent").is_offerable());

    let offers = cluster.cycle();

    assert_eq!(
        offers.iter().map(|offer| offer.agent_id.clone()).collect::<Vec<_>>(),
        vec![talking]
    );
}

#[test]
fn no_configured_minimum_offers_any_crumb() {
    let config = AllocatorConfig { min_allocatable: Vec::new(), ..AllocatorConfig::default() };
    let mut cluster = Cluster::new(config);
    cluster.add_agent("cpus:0.001;mem:1");
    cluster.subscribe("first", &["web"]);
    cluster.subscribe("second", &["web"]);

    let offers = cluster.cycle();

    assert_eq!(
        offers.len(),
        1,
        "one framework takes the whole agent; the other gets nothing empty"
    );
}

#[test]
fn a_dynamic_reservation_reaches_only_its_role() {
    let mut cluster = Cluster::default();
    let agent = cluster.add_agent("cpus:4;mem:4096");
    let ops = cluster.subscribe("ops", &["ops"]);
    let web = cluster.subscribe("web", &["web"]);
    let reservation =
        corral_state::Reservation::Dynamic { role: role("web"), principal: Some("ops".to_owned()) };
    let reserved = corral_state::Resources::from_list(vec![
        corral_state::Resource::scalar("cpus", Scalar::from_units(3)).reserved(reservation.clone()),
        corral_state::Resource::scalar("mem", Scalar::from_units(3072)).reserved(reservation),
    ])
    .expect("reservation builds");
    cluster.operator(Command::ReserveResources { agent_id: agent, resources: reserved.clone() });

    let offers = cluster.cycle();

    let to_web = offers
        .iter()
        .find(|offer| offer.framework_id == web)
        .expect("web is offered its reservation");
    assert!(to_web.resources.contains(&reserved));
    for offer in offers.iter().filter(|offer| offer.framework_id == ops) {
        assert!(offer.resources.iter().all(|resource| resource.reservation.role().is_none()));
    }
}
