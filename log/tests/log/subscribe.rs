//! Subscriptions: resume from a cursor on any master, retention, slow subscribers, filters.

use corral_log::{
    EventFilter, JournalEvent, JournalRetention, Subscription, SubscriptionEnded,
    SubscriptionLimits,
};
use corral_state::{Cursor, Event, Topic};

use super::support::{eventually, test_tuning, TestCluster, DEADLINE};

fn hostname_of(event: &JournalEvent) -> String {
    match &event.event {
        Event::AgentAdded { info, .. } => info.hostname.clone(),
        other => panic!("unexpected event {other:?}"),
    }
}

async fn take(subscription: &mut Subscription, count: usize) -> Vec<JournalEvent> {
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        let next =
            tokio::time::timeout(DEADLINE, subscription.next()).await.expect("no event in time");
        events.push(next.expect("subscription ended").expect("subscription failed"));
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_moving_to_another_master_sees_every_event_once_in_order() {
    let cluster = TestCluster::start(3).await;
    for number in 0..30 {
        cluster.propose(number).await;
    }
    let mut first = cluster.node(1).subscribe(Cursor::START, EventFilter::all()).unwrap();
    let mut received = take(&mut first, 10).await;
    drop(first);

    let resume_from = received.last().unwrap().cursor;
    let mut second = cluster.node(2).subscribe(resume_from, EventFilter::all()).unwrap();
    let writer = {
        let nodes = cluster.nodes.clone();
        let network = cluster.network.clone();
        let tuning = cluster.tuning.clone();
        tokio::spawn(async move {
            // Live events arrive while the subscriber is reading; proposals go to the leader.
            let cluster = TestCluster { network, nodes, directories: Default::default(), tuning };
            for number in 30..60 {
                cluster.propose(number).await;
            }
        })
    };
    received.extend(take(&mut second, 50).await);
    writer.await.unwrap();

    let cursors: Vec<Cursor> = received.iter().map(|event| event.cursor).collect();
    assert!(
        cursors.windows(2).all(|pair| pair[0] < pair[1]),
        "cursors not strictly increasing: {cursors:?}"
    );
    let hostnames: Vec<String> = received.iter().map(hostname_of).collect();
    let expected: Vec<String> = (0..60).map(|number| format!("agent-{number}")).collect();
    assert_eq!(hostnames, expected);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_behind_retention_is_refused_naming_the_oldest() {
    let retention = JournalRetention { max_age: None, max_indexes: Some(5) };
    let cluster =
        TestCluster::start_with(3, test_tuning(), |config| config.retention = retention).await;
    let mut last_index = 0;
    for number in 0..20 {
        last_index = cluster.propose(number).await.index;
    }
    let node = cluster.node(1);
    // Until node 1 has applied the last entry its journal is still being trimmed, and a
    // cursor read from it now could be trimmed away before the subscription reads it.
    eventually("node 1 to apply every proposal", || async {
        (node.applied_index() >= last_index).then_some(())
    })
    .await;
    let oldest = eventually("the journal to be trimmed", || async {
        match node.subscribe(Cursor::START, EventFilter::all()) {
            Err(SubscriptionEnded::TooOld { oldest }) => Some(oldest),
            _ => None,
        }
    })
    .await;
    let mut subscription = node.subscribe(oldest, EventFilter::all()).unwrap();
    let events = take(&mut subscription, 1).await;
    assert!(events[0].cursor > oldest);
    assert!(node.journal().len() <= 5);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_is_dropped_with_a_reason() {
    let limits = SubscriptionLimits { buffer_events: 4, max_lag_indexes: 3, read_rows: 2 };
    let cluster =
        TestCluster::start_with(3, test_tuning(), |config| config.subscription = limits).await;
    cluster.propose(0).await;
    let leader = cluster.leader().await;
    let mut subscription =
        cluster.node(leader).subscribe(Cursor::START, EventFilter::all()).unwrap();
    for number in 1..20 {
        cluster.propose(number).await;
    }
    let mut delivered = Vec::new();
    let reason = loop {
        match tokio::time::timeout(DEADLINE, subscription.next())
            .await
            .expect("subscription stalled")
        {
            Some(Ok(event)) => delivered.push(event),
            Some(Err(reason)) => break reason,
            None => panic!("subscription ended without a reason"),
        }
    };
    assert!(matches!(reason, SubscriptionEnded::TooSlow { .. }), "got {reason:?}");
    assert!(delivered.len() <= 5, "a slow subscriber was buffered {} events", delivered.len());
    // It resumes from the last cursor it received and misses nothing.
    let resume_from = delivered.last().map_or(Cursor::START, |event| event.cursor);
    let mut resumed = cluster.node(leader).subscribe(resume_from, EventFilter::all()).unwrap();
    let rest = take(&mut resumed, 20 - delivered.len()).await;
    assert_eq!(hostname_of(rest.last().unwrap()), "agent-19");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_topics_and_agents() {
    let cluster = TestCluster::start(3).await;
    let third = cluster.propose(3).await;
    for number in [0, 1, 2, 4] {
        cluster.propose(number).await;
    }
    let agent_id = third.outcome.events()[0].agent_id().unwrap().clone();
    let filter = EventFilter { agent_id: Some(agent_id), ..EventFilter::all() };
    let mut by_agent = cluster.node(3).subscribe(Cursor::START, filter).unwrap();
    let events = take(&mut by_agent, 1).await;
    assert_eq!(hostname_of(&events[0]), "agent-3");
    assert_eq!(events[0].cursor, third.first_event);

    let mut no_agents =
        cluster.node(3).subscribe(Cursor::START, EventFilter::topics([Topic::Task])).unwrap();
    let mut all =
        cluster.node(3).subscribe(Cursor::START, EventFilter::topics([Topic::Agent])).unwrap();
    assert_eq!(take(&mut all, 5).await.len(), 5);
    let nothing =
        tokio::time::timeout(std::time::Duration::from_millis(200), no_agents.next()).await;
    assert!(nothing.is_err(), "a task subscriber received agent events");
    cluster.shutdown().await;
}

/// Whatever starts from "the state, then the events after it" (the allocator, operator
/// SUBSCRIBE, the service scheduler) must read both at one position. While a writer keeps
/// changing a role's weight, every (state, cursor) pair read must be followed by exactly the
/// next change: never one the state already holds (seen twice), never a later one (missed).
/// Reading the applied index and then the state apart fails this within a few rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_read_with_its_cursor_is_followed_by_exactly_the_next_event() {
    use corral_log::ReadConsistency;
    use corral_state::{Actor, Command, RequestId, Role, Scalar};

    let cluster = TestCluster::start(1).await;
    cluster.leader().await;
    let node = cluster.node(1).clone();
    let role = Role::parse("eng").expect("role");
    const CHANGES: u64 = 400;
    let writer = {
        let node = node.clone();
        let role = role.clone();
        tokio::spawn(async move {
            for weight in 2..=CHANGES + 1 {
                let command = Command::UpdateWeights {
                    weights: vec![(role.clone(), Scalar::from_units(weight as i64))],
                };
                let actor = Actor::Operator { principal: None };
                node.propose(RequestId::new(format!("w{weight}")), actor, command)
                    .await
                    .expect("weight change committed");
            }
        })
    };
    let mut checked = 0;
    while !writer.is_finished() {
        let (weight, cursor) = node
            .read_with_cursor(ReadConsistency::Local, |state| state.role_config(&role).weight)
            .await
            .expect("read");
        if weight == Scalar::from_units(CHANGES as i64 + 1) {
            break;
        }
        let mut after = node.subscribe(cursor, EventFilter::topics([Topic::Role])).unwrap();
        let next = take(&mut after, 1).await.remove(0);
        match next.event {
            Event::WeightUpdated { weight: next_weight, .. } => assert_eq!(
                next_weight,
                weight + Scalar::from_units(1),
                "the first event after the state read at {cursor} must be the next change"
            ),
            other => panic!("unexpected event {other:?}"),
        }
        checked += 1;
    }
    writer.await.expect("writer");
    assert!(checked > 10, "too few reads overlapped the writer ({checked}) to prove anything");
    cluster.shutdown().await;
}
