//! The metrics' running totals follow agents, tasks and offers through their lives, with
//! the numbers an operator would count by hand (the property tests check they always equal
//! a recount; this checks what a recount means).

use std::time::Duration;

use corral_state::model::TaskState;
use corral_state::{AgentStanding, Amounts, ClusterState, Command, Role, Scalar, Tally};

use super::support::World;

fn units(value: i64) -> Scalar {
    Scalar::from_units(value)
}

#[test]
fn totals_follow_agents_tasks_and_offers_from_first_launch_to_teardown() {
    let mut world = World::new();
    let first = world.add_agent("a", "cpus:4;mem:1024;disk:100");
    let second = world.add_agent("b", "cpus:2;mem:512");
    let framework = world.subscribe("f", &["*"]);
    world.launch(&framework, &first, "web", "cpus:1;mem:128");
    world.offer(&framework, &second, "*", "cpus:2;mem:256");
    let tally = world.state.tally();
    assert_eq!(tally.agents(AgentStanding::Active), 2);
    assert_eq!(
        tally.agent_total(),
        Amounts { cpus: units(6), mem: units(1536), disk: units(100), gpus: Scalar::ZERO }
    );
    assert_eq!(tally.tasks(TaskState::Staging), 1);
    let allocated = tally.allocated_by_role()[&Role::default_role()];
    assert_eq!((allocated.count, allocated.amounts.cpus), (1, units(1)));
    let offered = tally.offered_by_framework()[&framework];
    assert_eq!((offered.count, offered.amounts.mem), (1, units(256)));

    world.report(&framework, &first, "web", TaskState::Running, "u1");
    world.ack(&framework, &first, "web", "u1");
    assert_eq!(world.state.tally().tasks(TaskState::Staging), 0);
    assert_eq!(world.state.tally().tasks(TaskState::Running), 1);

    // A finished task frees what it held at once and leaves the counts once acknowledged.
    world.report(&framework, &first, "web", TaskState::Finished, "u2");
    assert_eq!(world.state.tally().tasks(TaskState::Finished), 1);
    assert!(world.state.tally().allocated_by_role().is_empty());
    world.ack(&framework, &first, "web", "u2");
    assert_eq!(world.state.tally().tasks(TaskState::Finished), 0);

    // A gone agent leaves the total; a deactivated one stays in it under its own standing.
    world.operator(Command::MarkAgentGone { agent_id: second.clone() });
    world.operator(Command::DeactivateAgent { agent_id: first.clone() });
    let tally = world.state.tally();
    assert_eq!(tally.agents(AgentStanding::Gone), 1);
    assert_eq!(tally.agents(AgentStanding::Deactivated), 1);
    assert_eq!(tally.agents(AgentStanding::Active), 0);
    assert_eq!(tally.agent_total().cpus, units(4));
    assert!(tally.offered_by_role().is_empty(), "the gone agent's offer was rescinded");
    assert_eq!(tally, &Tally::recount(&world.state));
}

#[test]
fn the_oldest_heartbeat_is_of_the_agent_heard_from_longest_ago() {
    let mut world = World::new();
    let first = world.add_agent("a", "cpus:1;mem:64");
    let registered = world.clock;
    world.advance(Duration::from_secs(5));
    let second = world.add_agent("b", "cpus:1;mem:64");
    assert_eq!(world.state.tally().oldest_heartbeat(), Some(registered));
    world.advance(Duration::from_secs(5));
    world.as_agent(&first, Command::AgentHeartbeat { agent_id: first.clone() });
    assert_eq!(
        world.state.tally().oldest_heartbeat(),
        Some(registered.plus(Duration::from_secs(5)))
    );
    world.operator(Command::MarkAgentGone { agent_id: second });
    assert_eq!(world.state.tally().oldest_heartbeat(), Some(world.clock));
}

#[test]
fn a_restored_snapshot_counts_its_totals_again() {
    let mut world = World::new();
    let agent = world.add_agent("a", "cpus:4;mem:1024");
    let framework = world.subscribe("f", &["*"]);
    world.launch(&framework, &agent, "web", "cpus:1;mem:128");
    let restored =
        ClusterState::from_snapshot(&world.state.snapshot().expect("the state encodes")).unwrap();
    assert_eq!(restored.tally(), world.state.tally());
    assert_ne!(restored.tally(), &Tally::default());
}
