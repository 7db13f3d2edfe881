//! The worked example of the DRF paper (Ghodsi et al., NSDI 2011, section 4): 9 CPUs and
//! 18 GB; user A's tasks need <1 CPU, 4 GB>, user B's <3 CPUs, 1 GB>; DRF runs three of A's
//! tasks and two of B's.

use std::collections::BTreeMap;
use std::time::Duration;

use corral_state::{FrameworkId, Resources};

use super::support::{res, Cluster};

/// Every framework launches one task of its demand per offer when it fits, and declines
/// for a minute when it does not; runs until nobody is offered anything.
fn run_until_settled(
    cluster: &mut Cluster,
    demands: &BTreeMap<FrameworkId, Resources>,
) -> BTreeMap<FrameworkId, usize> {
    for _ in 0..100 {
        let offers = cluster.cycle();
        if offers.is_empty() {
            break;
        }
        for offer in offers {
            let demand = &demands[&offer.framework_id];
            if offer.resources.contains(demand) {
                cluster.launch(&offer, demand.clone());
            } else {
                cluster.decline(&offer, Duration::from_secs(60));
            }
        }
        cluster.advance(Duration::from_secs(1));
    }
    demands
        .keys()
        .map(|framework_id| {
            let tasks = cluster
                .state
                .framework(framework_id)
                .map(|framework| framework.tasks.len())
                .unwrap_or(0);
            (framework_id.clone(), tasks)
        })
        .collect()
}

fn paper_demands(
    cluster: &mut Cluster,
    role_of_a: &str,
    role_of_b: &str,
) -> (FrameworkId, FrameworkId, BTreeMap<FrameworkId, Resources>) {
    let user_a = cluster.subscribe("user-a", &[role_of_a]);
    let user_b = cluster.subscribe("user-b", &[role_of_b]);
    let demands = BTreeMap::from([
        (user_a.clone(), res("cpus:1;mem:4096")),
        (user_b.clone(), res("cpus:3;mem:1024")),
    ]);
    (user_a, user_b, demands)
}

#[test]
fn one_agent_gives_a_three_tasks_and_b_two() {
    let mut cluster = Cluster::default();
    cluster.add_agent("cpus:9;mem:18432");
    let (user_a, user_b, demands) = paper_demands(&mut cluster, "a", "b");

    let tasks = run_until_settled(&mut cluster, &demands);

    assert_eq!(tasks[&user_a], 3);
    assert_eq!(tasks[&user_b], 2);
}

#[test]
fn users_in_one_role_are_ordered_by_their_own_dominant_share() {
    let mut cluster = Cluster::default();
    cluster.add_agent("cpus:9;mem:18432");
    let (user_a, user_b, demands) = paper_demands(&mut cluster, "shared", "shared");

    let tasks = run_until_settled(&mut cluster, &demands);

    assert_eq!(tasks[&user_a], 3);
    assert_eq!(tasks[&user_b], 2);
}

#[test]
fn doubling_a_weight_halves_its_share_and_shifts_tasks_to_it() {
    let mut cluster = Cluster::default();
    cluster.add_agent("cpus:9;mem:18432");
    cluster.set_weight("a", 2);
    let (user_a, user_b, demands) = paper_demands(&mut cluster, "a", "b");

    let tasks = run_until_settled(&mut cluster, &demands);

    // A's weighted share is a/9 against B's b/3: A reaches four tasks before B's second
    // no longer fits.
    assert_eq!(tasks[&user_a], 4);
    assert_eq!(tasks[&user_b], 1);
}

#[test]
fn the_example_split_over_two_agents_ends_the_same() {
    let mut cluster = Cluster::default();
    cluster.add_agent("cpus:3;mem:12288");
    cluster.add_agent("cpus:6;mem:6144");
    let (user_a, user_b, demands) = paper_demands(&mut cluster, "a", "b");

    let tasks = run_until_settled(&mut cluster, &demands);

    assert_eq!(tasks[&user_a], 3);
    assert_eq!(tasks[&user_b], 2);
}
