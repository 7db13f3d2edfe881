//! The cluster secret between real `corral master`s on plain HTTP: Raft's routes answer only
//! requests signed with it (401 otherwise, before Raft sees them), a cluster given one
//! elects and replicates, and masters given different ones never form a cluster.

use std::time::Duration;

use corral_log::network::{ClusterSecret, CLUSTER_AUTH_HEADER};
use corral_log::typ::{AppendEntriesRequest, Vote, VoteRequest};
use serde_json::Value;

use corral_testkit::cluster::Cluster;
use corral_testkit::eventually;

const LONG: Duration = Duration::from_secs(30);

async fn cluster_view(cluster: &Cluster, index: usize) -> Value {
    let url = cluster.masters[index].url("/corral/v1/cluster?digest=true");
    let answer = cluster.http.get(&url).send().await.expect("the master answers");
    answer.json().await.expect("JSON")
}

fn now_millis() -> u64 {
    corral_log::network::secret::now_millis()
}

/// Posts `body` to `route` on `address`, with `proof` as `Corral-Cluster-Auth` if any.
async fn post(
    cluster: &Cluster,
    address: &str,
    route: &str,
    body: &[u8],
    proof: Option<String>,
) -> (u16, Vec<u8>) {
    let mut request =
        cluster.http.post(format!("http://{address}/corral/raft/{route}")).body(body.to_vec());
    if let Some(proof) = proof {
        request = request.header(CLUSTER_AUTH_HEADER, proof);
    }
    let answer = request.send().await.expect("the master answers");
    let status = answer.status().as_u16();
    (status, answer.bytes().await.expect("a body").to_vec())
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("a JSON error body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn raft_requests_without_the_cluster_secret_are_refused_before_raft_sees_them() {
    let cluster = Cluster::start(3);
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    let address = cluster.masters[follower].address.clone();

    // Signed with the shared secret, the masters replicate as before: a write on the leader
    // reaches every master, with equal digests.
    let bootstrap = cluster.masters[leader].url("/corral/v1/acl/bootstrap");
    let answer = cluster.http.post(&bootstrap).send().await.expect("the leader answers");
    assert_eq!(answer.status(), 201);
    let committed = cluster_view(&cluster, leader).await["commit_index"].as_u64().expect("index");
    eventually(LONG, "every master applied the bootstrap, with one digest", || async {
        let mut digests = Vec::new();
        for index in 0..3 {
            let view = cluster_view(&cluster, index).await;
            if view["state_digest"]["index"].as_u64() < Some(committed) {
                return None;
            }
            digests.push(view["state_digest"]["digest"].clone());
        }
        let same = digests.iter().all(Value::is_string)
            && digests.windows(2).all(|pair| pair[0] == pair[1]);
        same.then_some(())
    })
    .await;

    let before = cluster_view(&cluster, follower).await;
    let term = before["term"].as_u64().expect("a term");
    let leader_id = cluster.masters[leader].node_id;
    // An append from a "leader" far ahead: a follower that took it would move to its term.
    let append = AppendEntriesRequest {
        vote: Vote::new_committed(term + 100, leader_id),
        prev_log_id: None,
        entries: Vec::new(),
        leader_commit: None,
    };
    let append = postcard::to_allocvec(&append).expect("encodes");
    let vote = VoteRequest { vote: Vote::new(term + 100, leader_id), last_log_id: None };
    let vote = postcard::to_allocvec(&vote).expect("encodes");

    let (status, body) = post(&cluster, &address, "append", &append, None).await;
    assert_eq!(status, 401);
    let body = json(&body);
    assert_eq!(
        (body["error"].as_str(), body["field"].as_str()),
        (Some("unauthenticated"), Some(CLUSTER_AUTH_HEADER)),
        "{body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("--cluster-secret-file")),
        "{body}"
    );
    let (status, _) = post(&cluster, &address, "vote", &vote, None).await;
    assert_eq!(status, 401, "a vote without the secret");

    let other =
        ClusterSecret::from_text("not this cluster's secret, but long enough").expect("a secret");
    let forged = other.sign(now_millis(), "POST", "/corral/raft/append", &append);
    let (status, body) = post(&cluster, &address, "append", &append, Some(forged)).await;
    assert_eq!(status, 401);
    let body = json(&body);
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("not made with this cluster's secret")),
        "{body}"
    );
    // The secret itself as the header proves nothing either.
    let text = std::fs::read_to_string(cluster.secret_file()).expect("the secret file");
    let (status, _) = post(&cluster, &address, "vote", &vote, Some(text.clone())).await;
    assert_eq!(status, 401, "the secret in clear");
    let secret = ClusterSecret::from_text(&text).expect("the cluster's secret");
    // A signature for another route does not carry over.
    let elsewhere = secret.sign(now_millis(), "POST", "/corral/raft/vote", &append);
    let (status, _) = post(&cluster, &address, "append", &append, Some(elsewhere)).await;
    assert_eq!(status, 401, "a proof made for another route");

    let after = cluster_view(&cluster, follower).await;
    assert_eq!(after["term"], before["term"], "no refused request moved the term");
    assert_eq!(after["leader"], before["leader"]);
    let metrics = cluster.http.get(cluster.masters[follower].url("/metrics")).send().await;
    let metrics = metrics.expect("metrics").text().await.expect("text");
    for (reason, route, count) in [
        ("missing", "append", 1),
        ("missing", "vote", 1),
        ("wrong_secret", "append", 2),
        ("malformed", "vote", 1),
    ] {
        let series = format!("corral_http_auth_denied_total{{reason=\"{reason}\",route=\"/corral/raft/{route}\"}} {count}");
        assert!(metrics.contains(&series), "{series} in\n{metrics}");
    }
    let log = std::fs::read_to_string(cluster.masters[follower].log_path()).expect("the log");
    assert!(log.contains("refused a Raft request not signed with the cluster secret"), "{log}");
    assert!(!log.contains(text.trim()), "the secret is never logged");

    // The same append, signed with the cluster's secret, is taken: the refusals above were
    // the secret's doing, not the request's.
    let proof = secret.sign(now_millis(), "POST", "/corral/raft/append", &append);
    let (status, _) = post(&cluster, &address, "append", &append, Some(proof)).await;
    assert_eq!(status, 200);
    eventually(LONG, "the follower in the signed request's term", || async {
        let view = cluster_view(&cluster, follower).await;
        (view["term"].as_u64() >= Some(term + 100)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn masters_given_different_secrets_form_no_cluster() {
    let cluster = Cluster::start_with_different_secrets(3);
    // Each master stands (a pre-vote) and is refused by the others, more than once.
    eventually(LONG, "every master refused the others' requests three times", || async {
        let refused = cluster.masters.iter().all(|master| {
            std::fs::read_to_string(master.log_path()).is_ok_and(|log| {
                log.matches("refused a Raft request not signed with the cluster secret").count()
                    >= 3
            })
        });
        refused.then_some(())
    })
    .await;
    for index in 0..3 {
        let view = cluster_view(&cluster, index).await;
        assert!(view["leader"].is_null(), "master {index} follows no one: {view}");
    }
}
