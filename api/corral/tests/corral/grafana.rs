//! grafana/ proven on a live Prometheus: three `corral master` processes, two agents, a
//! framework with running tasks and a Marathon app, scraped by Debian's real `prometheus`
//! server; then tests/python/grafana_proof.py lints every dashboard and runs every panel
//! query and alert expression against it. The alert rules' own promtool unit tests run
//! here too.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use corral_testkit::agent_process::AgentProcess;
use corral_testkit::cluster::Cluster;
use corral_testkit::eventually;
use corral_testkit::framework::python;
use corral_testkit::scheduler::RawFramework;
use corral_testkit::REPOSITORY;

/// A `prometheus` server on a port of its own, with its data in a temp dir.
pub(super) struct Prometheus {
    child: Child,
    pub(super) url: String,
}

impl Prometheus {
    /// Scrapes `masters` and `agents` every second, labelled as one cluster.
    fn start(directory: &Path, masters: &[String], agents: &[String]) -> Prometheus {
        Prometheus::scraping(directory, &[("corral-master", masters), ("corral-agent", agents)])
    }

    /// Scrapes each job's targets every second, labelled as one cluster.
    pub(super) fn scraping(directory: &Path, jobs: &[(&str, &[String])]) -> Prometheus {
        let port = corral_testkit::free_port();
        let config = directory.join("prometheus.yml");
        let scrape = |job: &str, targets: &[String]| {
            json!({"job_name": job, "scrape_interval": "1s", "scrape_timeout": "1s",
                   "static_configs": [{"targets": targets, "labels": {"cluster": "proof"}}]})
        };
        let body = json!({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": jobs.iter().map(|(job, targets)| scrape(job, targets)).collect::<Vec<Value>>(),
        });
        // YAML is a superset of JSON.
        std::fs::write(&config, body.to_string()).expect("prometheus config written");
        let log = std::fs::File::create(directory.join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", directory.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus is installed (./scripts/test.sh installs Debian's prometheus)");
        Prometheus { child, url: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agents' HTTP addresses as the masters know them (`slave(1)@host:port` in the v0 state).
async fn agent_addresses(cluster: &Cluster, leader: usize, count: usize) -> Vec<String> {
    eventually(Duration::from_secs(60), "the agents registered", || async {
        let state: Value = cluster
            .http
            .get(cluster.masters[leader].url("/master/state"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let addresses: Vec<String> = state["slaves"]
            .as_array()?
            .iter()
            .filter_map(|agent| agent["pid"].as_str()?.split_once('@').map(|(_, a)| a.to_owned()))
            .collect();
        (addresses.len() == count).then_some(addresses)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_query_and_alert_returns_data_on_a_live_prometheus() {
    let cluster = Cluster::start(3);
    let directory = tempfile::tempdir().expect("temp dir");
    let agents: Vec<AgentProcess> = (0..2)
        .map(|index| {
            let first = 24_000 + index * 100;
            let resources = format!("cpus:2;mem:2048;disk:1000;ports:[{first}-{}]", first + 99);
            AgentProcess::start(
                directory.path(),
                &format!("agent-{index}"),
                &cluster.addresses(),
                &["--resources", &resources],
            )
        })
        .collect();
    let leader = cluster.leader().await;
    let agent_addresses = agent_addresses(&cluster, leader, agents.len()).await;

    // A framework with running tasks, and a Marathon app.
    let framework =
        RawFramework::subscribe(&cluster.http, &cluster.masters[leader].address, "proof").await;
    framework
        .launch(vec![
            json!({"id": "sleeper-1", "command": {"value": "sleep 600"}}),
            json!({"id": "sleeper-2", "command": {"value": "sleep 600"}}),
        ])
        .await;
    framework.wait_for("sleeper-1", "TASK_RUNNING").await;
    // Holding its offers, the framework would starve the app's scheduler.
    framework.step_aside().await;
    let app = json!({"id": "/proof", "cmd": "sleep 600", "cpus": 0.1, "mem": 32,
                     "instances": 1, "portDefinitions": []});
    cluster.create_app(leader, &app).await;
    // Autoscaled, so the autoscaler panels and alert have series.
    let policy = json!({"min": 1, "max": 1, "evaluationIntervalSeconds": 1});
    let url = cluster.masters[leader].url("/corral/v1/apps/proof/autoscaler");
    let response = cluster.http.put(url).json(&policy).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());

    let prometheus = Prometheus::start(directory.path(), &cluster.addresses(), &agent_addresses);
    let targets = cluster.masters.len() + agent_addresses.len();
    eventually(Duration::from_secs(30), "every target up in Prometheus", || async {
        let answer: Value = reqwest::get(format!("{}/api/v1/targets", prometheus.url))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let active = answer["data"]["activeTargets"].as_array()?;
        let up = active.iter().filter(|target| target["health"] == "up").count();
        (up == targets).then_some(())
    })
    .await;

    let output = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(format!("{REPOSITORY}/tests/python/grafana_proof.py"))
            .args(["--prometheus", &prometheus.url, "--repository", REPOSITORY])
            .output()
            .expect("grafana_proof.py runs")
    })
    .await
    .expect("the proof finished");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    drop(agents);
}

/// Every alert rule fires in its promtool unit test, and the rule file is valid.
#[test]
fn alert_rules_pass_their_promtool_unit_tests() {
    for args in [
        vec!["check", "rules", "grafana/alerts/corral.yaml"],
        vec!["test", "rules", "grafana/alerts/tests/corral_test.yaml"],
    ] {
        let output = Command::new("promtool")
            .args(&args)
            .current_dir(REPOSITORY)
            .output()
            .expect("promtool is installed (./scripts/test.sh installs Debian's prometheus)");
        assert!(
            output.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
