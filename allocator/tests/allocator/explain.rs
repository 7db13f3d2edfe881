//! Explanations: shares, ranks and reasons as plain data.

use corral_allocator::Reason;

use super::support::{role, Cluster};

#[test]
fn a_framework_sees_its_share_and_rank_in_each_role() {
    let mut cluster = Cluster::default();
    cluster.add_agent("cpus:4;mem:4096");
    cluster.add_agent("cpus:4;mem:4096");
    let busy = cluster.subscribe("busy", &["web"]);
    let idle = cluster.subscribe("idle", &["web"]);
    let offers = cluster.cycle();
    for offer in offers.iter().filter(|offer| offer.framework_id == busy) {
        cluster.launch_all(offer);
    }
    for offer in offers.iter().filter(|offer| offer.framework_id == idle) {
        cluster.decline(offer, std::time::Duration::from_secs(60));
    }

    cluster.cycle();

    let busy_view = cluster.allocator.explain_framework(&busy).expect("known framework");
    let idle_view = cluster.allocator.explain_framework(&idle).expect("known framework");
    assert_eq!(busy_view.roles.len(), 1);
    assert!((busy_view.roles[0].dominant_share - 0.5).abs() < 1e-9);
    assert_eq!(busy_view.roles[0].rank, Some(2));
    assert_eq!(idle_view.roles[0].rank, Some(1));
    assert_eq!(idle_view.roles[0].dominant_share, 0.0);
    assert_eq!(idle_view.active_filters, 1);
    assert!(idle_view.reasons.contains(&Reason::DeclineFilters { agents: 1 }));
}

#[test]
fn a_role_reports_weight_quota_and_standing() {
    let mut cluster = Cluster::default();
    cluster.add_agent("cpus:8;mem:8192");
    cluster.subscribe("web", &["web"]);
    cluster.subscribe("batch", &["batch"]);
    cluster.set_weight("web", 3);
    cluster.set_quota("web", "cpus:2", "cpus:6");

    let offers = cluster.cycle();

    let web = cluster.allocator.explain_role(&role("web")).expect("known role");
    assert_eq!(web.weight, corral_state::Scalar::from_units(3));
    assert_eq!(web.guarantees.get("cpus"), corral_state::Scalar::from_units(2));
    assert_eq!(web.limits.get("cpus"), corral_state::Scalar::from_units(6));
    assert_eq!(web.siblings_in_running, 2);
    assert!(web.offers_made >= 1);
    assert!(web.reasons.contains(&Reason::Offered));
    assert!(!offers.is_empty());
    let json = serde_json::to_string(&web).expect("explanations serialize");
    assert!(json.contains("\"weight\""));
}

#[test]
fn an_unknown_framework_or_role_has_no_explanation() {
    let cluster = Cluster::default();
    assert!(cluster.allocator.explain_role(&role("nobody")).is_none());
    assert!(cluster
        .allocator
        .explain_framework(&corral_state::FrameworkId::new("nobody"))
        .is_none());
}
