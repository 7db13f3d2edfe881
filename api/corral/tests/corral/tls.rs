//! Mutual TLS between real `corral master`s and a real `corral agent` with certificates from
//! `corral certs`: Raft and the agent-facing API answer only the right role from the right
//! CA, certificates reload without a restart, and clients without TLS use the plain
//! listener. Also the request limits: 413 and 429 as JSON.

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use corral_testkit::agent_process::AgentProcess;
use corral_testkit::cluster::Cluster;
use corral_testkit::scheduler::RawFramework;
use corral_testkit::{eventually, make_certs, tls_client};

/// The DER bytes of the first certificate in a PEM file.
fn der(pem_path: &std::path::Path) -> Vec<u8> {
    let pem = std::fs::read_to_string(pem_path).expect("PEM file");
    let body: String = pem
        .lines()
        .skip_while(|line| !line.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).expect("base64 body")
}

/// The certificate `address` serves on a fresh connection.
async fn served_certificate(ca_dir: &std::path::Path, address: &str) -> Option<Vec<u8>> {
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(corral_testkit::ca(ca_dir))
        .tls_info(true)
        .build()
        .ok()?;
    let response = client.get(format!("https://{address}/health")).send().await.ok()?;
    let info = response.extensions().get::<reqwest::tls::TlsInfo>()?;
    info.peer_certificate().map(<[u8]>::to_vec)
}

async fn refusal(response: Result<reqwest::Response, reqwest::Error>) -> (u16, Value) {
    let response = response.expect("the TLS handshake succeeds");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON error body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_over_mutual_tls_runs_tasks_and_refuses_the_wrong_certificates() {
    let cluster = Cluster::start_tls(3, 1, &[]);
    let certs = cluster.certs.clone().expect("certificates");
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    let directory = tempfile::tempdir().expect("temp dir");
    let mut agent_args = cluster.agent_tls_args(1);
    agent_args.push("--resources=cpus:2;mem:1024;disk:1024;ports:[31000-31010]".to_owned());
    let agent_args: Vec<&str> = agent_args.iter().map(String::as_str).collect();
    let _agent = AgentProcess::start(directory.path(), "agent", &cluster.addresses(), &agent_args);

    // A framework without TLS (as pymesos) on the leader's plain listener; its SUBSCRIBE and
    // launch are replicated over mutual TLS, and the agent runs the task over it.
    let leader_plain = cluster.masters[leader].plain_address.clone().expect("plain listener");
    let framework = RawFramework::subscribe(&cluster.http, &leader_plain, "tls").await;
    framework
        .launch(vec![json!({"id": "hello", "command": {"value": "echo hello over tls"}})])
        .await;
    framework.wait_for("hello", "TASK_FINISHED").await;
    let tasks: Value = cluster
        .http
        .get(cluster.masters[leader].url("/master/tasks"))
        .send()
        .await
        .expect("tasks over https")
        .json()
        .await
        .expect("JSON");
    assert_eq!(tasks["tasks"][0]["state"], "TASK_FINISHED", "{tasks}");

    // A follower's plain listener sends a plain client to the leader's plain listener.
    let follower_plain = cluster.masters[follower].plain_address.clone().expect("plain");
    let redirect = cluster
        .http
        .post(format!("http://{follower_plain}/api/v1/scheduler"))
        .json(&json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "n"}}}))
        .send()
        .await
        .expect("follower answers");
    assert_eq!(redirect.status(), 307);
    assert_eq!(
        redirect.headers()["location"],
        format!("http://{leader_plain}/api/v1/scheduler").as_str()
    );

    // Raft and the agent API: only the role's certificate, only from this cluster's CA,
    // only over TLS.
    let other = directory.path().join("other-ca");
    make_certs(&cluster.cluster_id, &other, 1, 1);
    let address = &cluster.masters[follower].address;
    let raft = |client: &reqwest::Client| {
        client.post(format!("https://{address}/corral/raft/vote")).body(Vec::<u8>::new()).send()
    };
    let agent_route = |client: &reqwest::Client| {
        client.post(format!("https://{address}/corral/v1/agent/commands")).json(&json!({})).send()
    };
    let as_agent = tls_client(&certs, &certs, "agent-1");
    let (status, body) = refusal(raft(&as_agent).await).await;
    assert_eq!((status, body["field"].as_str()), (403, Some("certificate")), "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(message.contains(&format!("master.{}", cluster.cluster_id)), "{body}");
    let (status, body) = refusal(raft(&cluster.http).await).await;
    assert_eq!(status, 403, "a client without a certificate: {body}");
    let as_master = tls_client(&certs, &certs, "master-1");
    let (status, body) = refusal(agent_route(&as_master).await).await;
    assert_eq!(status, 403, "a master on the agent API: {body}");
    // The right role from another CA fails the handshake itself.
    assert!(raft(&tls_client(&other, &certs, "master-1")).await.is_err());
    assert!(agent_route(&tls_client(&other, &certs, "agent-1")).await.is_err());
    // A master's own certificate gets past the certificate check, then needs the cluster
    // secret as well; signed with it, the empty vote reaches Raft (and is malformed).
    let (status, body) = refusal(raft(&as_master).await).await;
    assert_eq!((status, body["field"].as_str()), (401, Some("corral-cluster-auth")), "{body}");
    let text = std::fs::read_to_string(cluster.secret_file()).expect("the secret file");
    let secret = corral_log::network::ClusterSecret::from_text(&text).expect("a secret");
    let now = corral_log::network::secret::now_millis();
    let proof = secret.sign(now, "POST", "/corral/raft/vote", b"");
    let signed = as_master
        .post(format!("https://{address}/corral/raft/vote"))
        .header(corral_log::network::CLUSTER_AUTH_HEADER, proof)
        .body(Vec::<u8>::new())
        .send()
        .await;
    assert_eq!(signed.expect("handshake").status(), 400);
    let follower_plain_raft =
        cluster.http.post(format!("http://{follower_plain}/corral/raft/vote")).send().await;
    let (status, body) = refusal(follower_plain_raft).await;
    assert_eq!(status, 403, "Raft on the plain listener: {body}");

    // Rotation: a new certificate from the same CA, swapped in by rename, serves the next
    // handshake, and the cluster keeps committing.
    let rotated = directory.path().join("rotated");
    std::fs::create_dir_all(&rotated).expect("directory");
    for file in ["ca.pem", "ca-key.pem"] {
        std::fs::copy(certs.join(file), rotated.join(file)).expect("copy the CA");
    }
    make_certs(&cluster.cluster_id, &rotated, 3, 0);
    let node = cluster.masters[follower].node_id;
    let before = served_certificate(&certs, address).await.expect("served certificate");
    assert_eq!(before, der(&certs.join(format!("master-{node}.pem"))));
    for suffix in ["-key.pem", ".pem"] {
        let name = format!("master-{node}{suffix}");
        std::fs::copy(rotated.join(&name), certs.join(format!("{name}.new"))).expect("copy");
        std::fs::rename(certs.join(format!("{name}.new")), certs.join(&name)).expect("rename");
    }
    let wanted = der(&rotated.join(format!("master-{node}.pem")));
    eventually(Duration::from_secs(10), "the rotated certificate on a new connection", || async {
        (served_certificate(&certs, address).await? == wanted).then_some(())
    })
    .await;
    framework.launch(vec![json!({"id": "after", "command": {"value": "true"}})]).await;
    framework.wait_for("after", "TASK_FINISHED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_bodies_get_413_and_too_many_streams_429_as_json() {
    let cluster = Cluster::start_with(1, &["--max-client-streams", "2"]);
    let leader = cluster.leader().await;
    let address = cluster.masters[leader].address.clone();

    let huge = vec![b' '; corral_master::API_BODY_LIMIT + 1];
    let response = cluster
        .http
        .post(format!("http://{address}/v2/apps"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "too_large");
    assert_eq!(body["field"], "body");
    assert_eq!(body["limit"], corral_master::API_BODY_LIMIT);
    assert!(body["message"]
        .as_str()
        .expect("message")
        .contains(&corral_master::API_BODY_LIMIT.to_string()));

    let from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .expect("client")
    };
    let events = format!("http://{address}/corral/v1/events?format=ndjson");
    let first_client = from([127, 0, 0, 1]);
    let one = first_client.get(&events).send().await.expect("stream");
    let two = first_client.get(&events).send().await.expect("stream");
    assert_eq!((one.status().as_u16(), two.status().as_u16()), (200, 200));
    let third = first_client.get(&events).send().await.expect("answer");
    assert_eq!(third.status(), 429);
    let body: Value = third.json().await.expect("JSON");
    assert_eq!(body["error"], "too_many_streams");
    assert!(body["message"].as_str().expect("message").contains("2 open event streams"), "{body}");
    // Another client is not held back, and a closed stream frees its place.
    let other = from([127, 0, 0, 2]).get(&events).send().await.expect("stream");
    assert_eq!(other.status(), 200);
    drop(one);
    eventually(Duration::from_secs(10), "a freed stream place", || async {
        let response = first_client.get(&events).send().await.ok()?;
        (response.status() == 200).then_some(response)
    })
    .await;
    drop((two, other));
}
