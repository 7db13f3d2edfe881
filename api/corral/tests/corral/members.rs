//! Replacing masters on real `corral master` processes, under a steady write load, driven by
//! the real `corral members` and `corral leader` commands.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use corral_testkit::cluster::Cluster;
use corral_testkit::eventually;

const LONG: Duration = Duration::from_secs(60);

/// A steady stream of writes (settings changes, each through the log), each tried against
/// every master in turn until one acknowledges it; a write nobody acknowledged within
/// `WRITE_DEADLINE` is a failure.
struct Load {
    masters: Mutex<Vec<String>>,
    acknowledged: AtomicU64,
    failures: Mutex<Vec<String>>,
    stop: AtomicBool,
}

const WRITE_DEADLINE: Duration = Duration::from_secs(10);

impl Load {
    fn start(masters: Vec<String>) -> (Arc<Load>, tokio::task::JoinHandle<()>) {
        let load = Arc::new(Load {
            masters: Mutex::new(masters),
            acknowledged: AtomicU64::new(0),
            failures: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let task = tokio::spawn(Load::run(load.clone()));
        (load, task)
    }

    fn set_masters(&self, masters: Vec<String>) {
        *self.masters.lock().unwrap() = masters;
    }

    fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::SeqCst)
    }

    /// Waits until `more` writes beyond what was acknowledged so far are acknowledged.
    async fn advances(&self, what: &str, more: u64) {
        let from = self.acknowledged();
        eventually(LONG, &format!("{more} more writes {what}"), || async {
            (self.acknowledged() >= from + more).then_some(())
        })
        .await;
    }

    async fn run(load: Arc<Load>) {
        // Follows a follower's 307 to the leader, body and all.
        let http =
            reqwest::Client::builder().timeout(Duration::from_secs(3)).build().expect("client");
        let mut number = 0u64;
        while !load.stop.load(Ordering::SeqCst) {
            number += 1;
            let body = json!({"max_statuses_per_task": 100 + number % 7});
            let started = Instant::now();
            let mut last_problem = String::new();
            let acknowledged = 'write: loop {
                let masters = load.masters.lock().unwrap().clone();
                for master in &masters {
                    let url = format!("http://{master}/corral/v1/settings");
                    match http.patch(&url).json(&body).send().await {
                        Ok(response) if response.status() == 200 => break 'write true,
                        Ok(response) => {
                            last_problem = format!("{url}: {}", response.status());
                        }
                        Err(error) => last_problem = format!("{url}: {error}"),
                    }
                }
                if started.elapsed() > WRITE_DEADLINE {
                    break false;
                }
                // Back-off between rounds while a leader is elected.
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            if acknowledged {
                load.acknowledged.fetch_add(1, Ordering::SeqCst);
            } else {
                load.failures.lock().unwrap().push(format!("write {number}: {last_problem}"));
            }
        }
    }
}

/// Runs `corral ARGS... --json` and returns its JSON, or its stderr when it fails.
fn corral_json(args: &[&str]) -> Result<Value, String> {
    let output = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(args)
            .arg("--json")
            .output()
            .expect("corral runs")
    });
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|error| format!("not JSON ({error}): {}", String::from_utf8_lossy(&output.stdout)))
}

fn voters(members: &Value) -> Vec<u64> {
    let mut voters: Vec<u64> = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter(|member| member["role"] != "learner")
        .map(|member| member["node_id"].as_u64().expect("node id"))
        .collect();
    voters.sort_unstable();
    voters
}

fn masters_flag(cluster: &Cluster) -> String {
    cluster.live_addresses().join(",")
}

/// Waits until the leader sees exactly `expected` as voters, all up.
async fn members_are(cluster: &Cluster, expected: &[u64]) -> Value {
    eventually(LONG, &format!("voters {expected:?}, all up"), || async {
        let members = corral_json(&["members", "list", "--master", &masters_flag(cluster)]).ok()?;
        let all_up = members["members"].as_array()?.iter().all(|member| member["up"] == true);
        (voters(&members) == expected && all_up).then_some(members)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_master_is_replaced_the_cluster_grows_and_shrinks_and_leadership_moves_under_load()
{
    let mut cluster = Cluster::start(3);
    let first_leader = cluster.leader().await;
    members_are(&cluster, &[1, 2, 3]).await;
    let (load, writer) = Load::start(cluster.addresses());
    load.advances("before anything changes", 20).await;

    // SIGKILL the leader, then remove it from the cluster.
    let killed = cluster.masters[first_leader].node_id;
    cluster.masters[first_leader].kill();
    load.set_masters(cluster.live_addresses());
    cluster.leader().await;
    load.advances("after the leader is killed", 20).await;
    let after_removal = eventually(LONG, "the dead master removed", || async {
        corral_json(&[
            "members",
            "remove",
            &killed.to_string(),
            "--master",
            &masters_flag(&cluster),
        ])
        .ok()
    })
    .await;
    let survivors: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != killed).collect();
    assert_eq!(voters(&after_removal), survivors);

    // A fresh master with an empty data directory joins, catches up and votes.
    let fresh = cluster.start_joining(4);
    let fresh_address = cluster.masters[fresh].address.clone();
    let added =
        corral_json(&["members", "add", "4", &fresh_address, "--master", &masters_flag(&cluster)])
            .expect("adding master 4");
    let mut three: Vec<u64> = survivors.iter().copied().chain([4]).collect();
    three.sort_unstable();
    assert_eq!(voters(&added), three);
    load.set_masters(cluster.live_addresses());
    members_are(&cluster, &three).await;
    load.advances("with the new master voting", 20).await;

    // Grow to five.
    for node_id in [5, 6] {
        let index = cluster.start_joining(node_id);
        let address = cluster.masters[index].address.clone();
        corral_json(&[
            "members",
            "add",
            &node_id.to_string(),
            &address,
            "--master",
            &masters_flag(&cluster),
        ])
        .unwrap_or_else(|error| panic!("adding master {node_id}: {error}"));
    }
    let five: Vec<u64> = three.iter().copied().chain([5, 6]).collect();
    load.set_masters(cluster.live_addresses());
    members_are(&cluster, &five).await;
    load.advances("with five masters", 20).await;

    // Shrink back to three: two followers leave and stop.
    let leader = cluster.leader().await;
    let leaving: Vec<u64> =
        five.iter().copied().filter(|id| *id != cluster.masters[leader].node_id).take(2).collect();
    for node_id in &leaving {
        corral_json(&[
            "members",
            "remove",
            &node_id.to_string(),
            "--master",
            &masters_flag(&cluster),
        ])
        .unwrap_or_else(|error| panic!("removing master {node_id}: {error}"));
        let index = cluster.masters.iter().position(|m| m.node_id == *node_id).unwrap();
        cluster.masters[index].kill();
    }
    load.set_masters(cluster.live_addresses());
    let remaining: Vec<u64> = five.iter().copied().filter(|id| !leaving.contains(id)).collect();
    members_are(&cluster, &remaining).await;
    load.advances("back at three masters", 20).await;

    // Hand leadership to a follower.
    let leader = cluster.leader().await;
    let target =
        remaining.iter().copied().find(|id| *id != cluster.masters[leader].node_id).unwrap();
    let moved = corral_json(&[
        "leader",
        "transfer",
        "--to",
        &target.to_string(),
        "--master",
        &masters_flag(&cluster),
    ])
    .expect("leadership transfer");
    assert_eq!(moved["leader"], target);
    let new_leader = cluster.leader().await;
    assert_eq!(cluster.masters[new_leader].node_id, target);
    load.advances("after the transfer", 20).await;

    // With one of three down, removing another live voter would lose the quorum: refused.
    let down = remaining.iter().copied().find(|id| *id != target).unwrap();
    let other = remaining.iter().copied().find(|id| *id != target && *id != down).unwrap();
    let down_index = cluster.masters.iter().position(|m| m.node_id == down).unwrap();
    cluster.masters[down_index].kill();
    load.set_masters(cluster.live_addresses());
    eventually(LONG, "the leader to see the killed master down", || async {
        let members =
            corral_json(&["members", "list", "--master", &masters_flag(&cluster)]).ok()?;
        members["members"]
            .as_array()?
            .iter()
            .any(|member| member["node_id"] == down && member["up"] == false)
            .then_some(())
    })
    .await;
    let refused = corral_json(&[
        "members",
        "remove",
        &other.to_string(),
        "--master",
        &masters_flag(&cluster),
    ])
    .expect_err("removing a live voter with another down must be refused");
    assert!(refused.contains("409") && refused.contains("\"field\":\"node_id\""), "{refused}");
    let unknown = corral_json(&["members", "remove", "77", "--master", &masters_flag(&cluster)])
        .expect_err("an unknown master");
    assert!(unknown.contains("404") && unknown.contains("\"field\":\"node_id\""), "{unknown}");
    cluster.masters[down_index].restart();
    load.set_masters(cluster.live_addresses());
    members_are(&cluster, &remaining).await;
    load.advances("with every master back", 20).await;

    load.stop.store(true, Ordering::SeqCst);
    writer.await.expect("the load ran to the end");
    let failures = load.failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "{} writes failed: {failures:?}", failures.len());

    // Every remaining master applied the same log to the same state.
    eventually(LONG, "the three masters to converge", || async {
        let mut digests = Vec::new();
        for address in cluster.live_addresses() {
            let url = format!("http://{address}/corral/v1/cluster?digest=true");
            let status: Value = cluster.http.get(&url).send().await.ok()?.json().await.ok()?;
            assert!(status["state_digest"]["digest"].is_string(), "{status}");
            digests.push(status["state_digest"].clone());
        }
        digests.windows(2).all(|pair| pair[0] == pair[1]).then_some(())
    })
    .await;
}
