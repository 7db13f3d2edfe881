//! `corral dev` as a newcomer runs it: one process, a master and an agent; stopping it kills
//! the tasks it started and removes its temporary data.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use corral_testkit::free_port;
use std::time::Duration;

use corral_testkit::eventually;
use corral_testkit::scheduler::RawFramework;
use serde_json::json;

const LONG: Duration = Duration::from_secs(60);

/// The first file named `name` under `directory`, searching depth first.
fn find(directory: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(directory).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|file| file == name) {
            return Some(path);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_corral_dev_kills_its_tasks_and_removes_its_data() {
    let temporary = tempfile::tempdir().expect("temp dir");
    let listen = format!("127.0.0.1:{}", free_port());
    let agent_listen = format!("127.0.0.1:{}", free_port());
    let dev = Command::new(corral_testkit::corral_bin())
        .args(["dev", "--listen", &listen, "--agent-listen", &agent_listen])
        // Tests run side by side: each dev cluster gets its own DNS port, not 8053.
        .args(["--dns-listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--cluster-id", &corral_testkit::unique_cluster_id()])
        // `corral dev` keeps its data in the temporary directory, here this test's own.
        .env("TMPDIR", temporary.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("corral dev starts");
    let data_dir = temporary.path().join(format!("corral-dev-{}", dev.id()));

    let http = reqwest::Client::new();
    eventually(LONG, "the dev master leads", || async {
        let status: serde_json::Value = http
            .get(format!("http://{listen}/corral/v1/cluster"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        status["leader"].as_u64()
    })
    .await;
    let framework = RawFramework::subscribe(&http, &listen, "dev-test").await;
    framework
        .launch(vec![
            json!({"id": "sleeper", "command": {"value": "echo $$ > pid; exec sleep 600"}}),
        ])
        .await;
    framework.wait_for("sleeper", "TASK_RUNNING").await;
    let pid_file = eventually(LONG, "the task's pid in its sandbox", || async {
        let file = find(&data_dir, "pid")?;
        let text = std::fs::read_to_string(&file).ok()?;
        text.trim().parse::<u32>().ok()
    })
    .await;
    let task_process = PathBuf::from(format!("/proc/{pid_file}"));
    assert!(task_process.exists(), "the task runs");

    let status = Command::new("kill").args(["-TERM", &dev.id().to_string()]).status();
    assert!(status.expect("kill runs").success());
    let exited = tokio::task::spawn_blocking(move || {
        let output = dev.wait_with_output().expect("corral dev exits");
        (output.status, String::from_utf8_lossy(&output.stdout).into_owned())
    });
    let (status, stdout) =
        tokio::time::timeout(LONG, exited).await.expect("it stops in time").expect("joined");
    assert!(status.success(), "corral dev exits cleanly: {status}\n{stdout}");
    assert!(stdout.contains("killing the tasks it started"), "{stdout}");
    assert!(stdout.contains("the sandboxes were under"), "{stdout}");
    eventually(LONG, "the task to be gone", || async { (!task_process.exists()).then_some(()) })
        .await;
    assert!(!data_dir.exists(), "the temporary data dir is removed: {}", data_dir.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn corral_dev_with_prometheus_has_both_processes_scraped_and_stops_prometheus_with_it() {
    let temporary = tempfile::tempdir().expect("temp dir");
    let listen = format!("127.0.0.1:{}", free_port());
    let agent_listen = format!("127.0.0.1:{}", free_port());
    let prometheus = format!("127.0.0.1:{}", free_port());
    let dev = Command::new(corral_testkit::corral_bin())
        .args(["dev", "--listen", &listen, "--agent-listen", &agent_listen])
        // Tests run side by side: each dev cluster gets its own DNS port, not 8053.
        .args(["--dns-listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--cluster-id", &corral_testkit::unique_cluster_id()])
        .args(["--prometheus", &prometheus])
        .env("TMPDIR", temporary.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("corral dev starts");

    // Both targets up, and the alert rules shipped in grafana/ loaded.
    eventually(LONG, "the master and the agent scraped", || async {
        let answer: serde_json::Value = reqwest::get(format!("http://{prometheus}/api/v1/targets"))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let active = answer["data"]["activeTargets"].as_array()?;
        let up: Vec<&str> = active
            .iter()
            .filter(|target| target["health"] == "up")
            .filter_map(|target| target["labels"]["job"].as_str())
            .collect();
        (up.contains(&"corral-master") && up.contains(&"corral-agent")).then_some(())
    })
    .await;
    let rules: serde_json::Value = reqwest::get(format!("http://{prometheus}/api/v1/rules"))
        .await
        .expect("rules answered")
        .json()
        .await
        .expect("rules JSON");
    let groups = rules["data"]["groups"].as_array().expect("rule groups");
    assert!(groups.iter().any(|group| group["name"] == "corral-log"), "{rules}");

    let status = Command::new("kill").args(["-TERM", &dev.id().to_string()]).status();
    assert!(status.expect("kill runs").success());
    let exited = tokio::task::spawn_blocking(move || dev.wait_with_output().expect("exits"));
    let output =
        tokio::time::timeout(LONG, exited).await.expect("it stops in time").expect("joined");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    eventually(LONG, "prometheus stopped", || async {
        reqwest::get(format!("http://{prometheus}/-/ready")).await.is_err().then_some(())
    })
    .await;
}
