//! Quota: guarantees first and their headroom held back; limits never exceeded, nested
//! roles included.

use corral_state::Scalar;

use super::support::{res, role, Cluster};

fn cpus_of(resources: &corral_state::Resources) -> Scalar {
    resources.scalar("cpus")
}

#[test]
fn a_guarantee_is_met_before_others_take_the_cluster() {
    let mut cluster = Cluster::default();
    for _ in 0..4 {
        cluster.add_agent("cpus:4;mem:4096");
    }
    // Subscribed first, so it would win every tie without quota.
    let greedy = cluster.subscribe("greedy", &["batch"]);
    let guaranteed = cluster.subscribe("guaranteed", &["prod"]);
    cluster.set_quota("prod", "cpus:6;mem:6144", "");

    let offers = cluster.cycle();

    let to_prod = offers.iter().filter(|offer| offer.framework_id == guaranteed);
    let prod_cpus = to_prod.fold(Scalar::ZERO, |sum, offer| sum + cpus_of(&offer.resources));
    assert!(prod_cpus >= Scalar::from_units(6), "prod got {prod_cpus} cpus");
    assert!(
        offers.iter().any(|offer| offer.framework_id == greedy),
        "the rest still goes to others"
    );
}

#[test]
fn headroom_is_held_back_even_when_the_quota_role_takes_nothing() {
    let mut cluster = Cluster::default();
    for _ in 0..4 {
        cluster.add_agent("cpus:4;mem:4096");
    }
    let greedy = cluster.subscribe("greedy", &["batch"]);
    let guaranteed = cluster.subscribe("guaranteed", &["prod"]);
    cluster.set_quota("prod", "cpus:6;mem:6144", "");
    cluster.suppress(&guaranteed, &["prod"]);

    let allocation = cluster.decide();

    let greedy_cpus = allocation
        .offers
        .iter()
        .filter(|offer| offer.framework_id == greedy)
        .fold(Scalar::ZERO, |sum, offer| sum + cpus_of(&offer.resources));
    assert_eq!(greedy_cpus, Scalar::from_units(10), "16 cpus less the 6 held for prod");
    assert_eq!(allocation.summary.quota_headroom, res("cpus:6;mem:6144").scalar_quantities());
    let explanation = cluster.allocator.explain_role(&role("batch")).expect("known role");
    assert!(explanation
        .reasons
        .iter()
        .any(|reason| matches!(reason, corral_allocator::Reason::HeldForOtherRolesQuota { .. })));
}

#[test]
fn a_limit_on_a_parent_caps_its_sub_roles() {
    let mut cluster = Cluster::default();
    for _ in 0..3 {
        cluster.add_agent("cpus:2;mem:2048");
    }
    let web = cluster.subscribe("web", &["eng/web"]);
    cluster.set_quota("eng", "", "cpus:3");

    let offers = cluster.cycle();

    let web_cpus = offers
        .iter()
        .filter(|offer| offer.framework_id == web)
        .fold(Scalar::ZERO, |sum, offer| sum + cpus_of(&offer.resources));
    assert_eq!(web_cpus, Scalar::from_units(3));
    for offer in &offers {
        cluster.launch_all(offer);
    }
    assert!(
        cluster.cycle().iter().all(|offer| cpus_of(&offer.resources).is_zero()),
        "no more cpus past the limit"
    );
    let explanation = cluster.allocator.explain_role(&role("eng")).expect("known role");
    assert_eq!(explanation.consumed.get("cpus"), Scalar::from_units(3));
}

#[test]
fn nested_guarantees_are_met_inside_their_parent() {
    let mut cluster = Cluster::default();
    for _ in 0..4 {
        cluster.add_agent("cpus:4;mem:4096");
    }
    cluster.subscribe("batch", &["batch"]);
    let api = cluster.subscribe("api", &["eng/api"]);
    cluster.set_quota("eng", "cpus:8;mem:8192", "cpus:10;mem:10240");
    cluster.set_quota("eng/api", "cpus:5;mem:5120", "");

    for offer in cluster.cycle() {
        cluster.launch_all(&offer);
    }

    let eng = cluster.consumed_by("eng");
    assert!(eng.scalar("cpus") >= Scalar::from_units(8), "eng consumed {eng}");
    assert!(eng.scalar("cpus") <= Scalar::from_units(10));
    assert!(cluster.consumed_by("eng/api").scalar("cpus") >= Scalar::from_units(5));
    assert!(cluster.state.framework(&api).is_some());
}
