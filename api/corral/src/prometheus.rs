//! `corral dev --prometheus`: a real Prometheus server (the `prometheus` binary on the PATH,
//! Debian's package) scraping the dev master and agent every few seconds and evaluating
//! grafana/alerts, so the dashboards in grafana/ have something to show.

use std::path::Path;

use anyhow::Context;
use tokio::process::{Child, Command};

/// The alert rules shipped in grafana/alerts, built into the binary.
const ALERT_RULES: &str = include_str!("../../../grafana/alerts/corral.yaml");

/// Writes the configuration under `directory` and starts Prometheus on `listen`; it stops
/// when the returned child is dropped.
pub(crate) fn start(
    directory: &Path,
    listen: &str,
    master: &str,
    agent: &str,
    cluster: &str,
) -> anyhow::Result<Child> {
    std::fs::create_dir_all(directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    let rules = directory.join("corral-alerts.yaml");
    std::fs::write(&rules, ALERT_RULES)
        .with_context(|| format!("cannot write {}", rules.display()))?;
    let scrape = |job: &str, target: &str| {
        serde_json::json!({"job_name": job,
                           "static_configs": [{"targets": [target], "labels": {"cluster": cluster}}]})
    };
    let config = serde_json::json!({
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": [rules],
        "scrape_configs": [scrape("corral-master", master), scrape("corral-agent", agent)],
    });
    let config_path = directory.join("prometheus.yml");
    // YAML is a superset of JSON.
    std::fs::write(&config_path, config.to_string())
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let log_path = directory.join("prometheus.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    Command::new("prometheus")
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!("--storage.tsdb.path={}", directory.join("tsdb").display()))
        .arg(format!("--web.listen-address={listen}"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start `prometheus`: install it (Debian: apt-get install prometheus)")
}
