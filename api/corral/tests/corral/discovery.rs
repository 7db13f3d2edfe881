//! Service discovery end to end: a Marathon app with a health check on a real agent, the
//! built-in DNS and the catalog of a real master. A task is named by DNS from the first
//! query after its master applied its healthy update, and gone from the first query after
//! its unhealthy one ("within one apply"); a catalog long poll wakes on each.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use corral_state::model::{TaskState, TaskStatus};
use corral_state::Event;
use serde_json::{json, Value};

use corral_testkit::agent_process::AgentProcess;
use corral_testkit::cluster::Cluster;
use corral_testkit::events::LoggedEvents;

const LONG: Duration = Duration::from_secs(60);
const NAME: &str = "web-shop.marathon.mesos";

/// A DNS query for `name`'s A records: the reply's rcode and number of answers.
async fn resolve(server: SocketAddr, name: &str) -> (u8, u16) {
    let mut query = vec![0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("a UDP socket");
    socket.send_to(&query, server).await.expect("sent");
    let mut reply = [0u8; 512];
    let (length, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut reply))
        .await
        .expect("a DNS reply in time")
        .expect("received");
    assert!(length >= 12 && reply[..2] == [0x42, 0x42], "a reply to this query");
    (reply[3] & 0x0f, u16::from_be_bytes([reply[6], reply[7]]))
}

/// Waits for an update of the app's task that `wanted` accepts; the master has applied it
/// when its event stream carries it.
async fn applied(events: &mut LoggedEvents, what: &str, wanted: impl Fn(&TaskStatus) -> bool) {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        if let Event::TaskUpdated { status, .. } = events.next(deadline, || what.to_owned()).await {
            if status.task_id.as_str().starts_with("shop_web.") && wanted(&status) {
                return;
            }
        }
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let response = http.get(url).timeout(LONG).send().await.expect("answered");
    assert!(response.status().is_success(), "{url}: {}", response.status());
    response.json().await.expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_is_named_by_dns_and_ready_in_the_catalog_from_the_apply_that_makes_it_healthy() {
    let dns_port = corral_testkit::free_port();
    let dns_listen = format!("127.0.0.1:{dns_port}");
    let cluster = Cluster::start_with(1, &["--dns-listen", &dns_listen]);
    let dns: SocketAddr = dns_listen.parse().unwrap();
    let leader = cluster.leader().await;
    let directory = tempfile::tempdir().expect("temp dir");
    // Stopped when dropped, gracefully: it kills its tasks, so none outlives the test.
    let _agent = AgentProcess::start(
        directory.path(),
        "agent",
        &cluster.addresses(),
        &["--resources=cpus:2;mem:1024;disk:1024;ports:[33000-33099]"],
    );
    let marker = directory.path().join("healthy");
    let app = json!({
        "id": "/shop/web", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 1,
        "portDefinitions": [{"port": 0, "name": "http"}],
        "healthChecks": [{"protocol": "COMMAND",
                          "command": {"value": format!("test -f {}", marker.display())},
                          "delaySeconds": 0, "intervalSeconds": 1, "gracePeriodSeconds": 300,
                          "maxConsecutiveFailures": 1000}]});
    cluster.create_app(leader, &app).await;

    let events_url = cluster.masters[leader].url("/corral/v1/events?format=ndjson&topic=task");
    let mut events = LoggedEvents::open(&events_url).await;
    let service_url = cluster.masters[leader].url("/corral/v1/services/shop/web");
    applied(&mut events, "RUNNING", |s| s.state == TaskState::Running).await;
    let before = get_json(&cluster.http, &service_url).await;
    // Running but not yet checked: not named, not ready.
    assert_eq!(resolve(dns, NAME).await, (3, 0), "NXDOMAIN before the first passed check");

    // A client long-polling from the catalog's index as it is now, each poll from the index
    // the last one gave, sees the instance ready; every answer is a change (none ran out
    // its 60 s wait), so every index is higher than the one before.
    let poll = {
        let http = cluster.http.clone();
        let mut index = before["index"].as_u64().expect("an index");
        let service_url = service_url.clone();
        tokio::spawn(async move {
            loop {
                let url = format!("{service_url}?index={index}&wait=60s");
                let answer = get_json(&http, &url).await;
                let next = answer["index"].as_u64().expect("an index");
                assert!(next > index, "a poll from {index} answered {answer}");
                if answer["service"]["instances"][0]["ready"] == true {
                    return answer;
                }
                index = next;
            }
        })
    };

    let healthy_at = Instant::now();
    std::fs::write(&marker, b"ok").expect("marker written");
    applied(&mut events, "healthy", |s| s.healthy == Some(true)).await;
    let (rcode, answers) = resolve(dns, NAME).await;
    let named_after = healthy_at.elapsed();
    assert_eq!((rcode, answers), (0, 1), "the first query after the healthy update names it");
    let woken = poll.await.expect("the poll answers");
    let instance = &woken["service"]["instances"][0];
    assert_eq!(
        (instance["ready"].clone(), instance["healthy"].clone()),
        (json!(true), json!(true))
    );

    let failing_at = Instant::now();
    std::fs::remove_file(&marker).expect("marker removed");
    applied(&mut events, "unhealthy", |s| s.healthy == Some(false)).await;
    assert_eq!(resolve(dns, NAME).await, (3, 0), "the first query after the unhealthy update");
    let dropped_after = failing_at.elapsed();
    let catalog = get_json(&cluster.http, &service_url).await;
    assert_eq!(catalog["service"]["instances"][0]["ready"], false, "{catalog}");
    // Not asserted (timing is for benchmarks): how long a check interval and an apply took.
    eprintln!("named {named_after:?} after the check could pass, dropped {dropped_after:?} after it could fail");
}
