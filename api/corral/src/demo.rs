//! The `corral dev --demo` framework: subscribes through the Mesos v1 scheduler API, launches
//! three small tasks on the first offer and prints their updates, acknowledging each.

use std::time::Duration;

use anyhow::{bail, Context};
use corral_client::SchedulerClient;
use serde_json::{json, Value};

const TASKS: usize = 3;

pub(crate) async fn run(master: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let info = json!({"user": "root", "name": "corral-dev-demo", "failover_timeout": 3600.0});
    // The master in this same process may still be electing itself.
    let mut attempts = 0;
    let (client, mut events) = loop {
        attempts += 1;
        match SchedulerClient::subscribe(&http, master, info.clone()).await {
            Ok(subscribed) => break subscribed,
            Err(error) if attempts < 100 => {
                tracing::debug!(%error, "demo framework not subscribed yet");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => return Err(error).context("the demo framework cannot subscribe"),
        }
    };
    println!("demo: subscribed as {}", client.framework_id());
    let mut launched = false;
    while let Some(event) = events.next().await {
        let event = event.context("scheduler stream")?;
        match event["type"].as_str() {
            Some("OFFERS") if !launched => {
                let offer = &event["offers"]["offers"][0];
                client.launch(offer, demo_tasks(offer)).await.context("ACCEPT")?;
                launched = true;
                println!("demo: launched {TASKS} tasks: echo hello; sleep 30");
            }
            Some("UPDATE") => {
                let status = &event["update"]["status"];
                let (Some(task), Some(state)) =
                    (status["task_id"]["value"].as_str(), status["state"].as_str())
                else {
                    bail!("an update without a task id or state: {status}");
                };
                println!("demo: task {task} is {state}");
                client.acknowledge(status).await.context("ACKNOWLEDGE")?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn demo_tasks(offer: &Value) -> Vec<Value> {
    (1..=TASKS)
        .map(|number| {
            let id = format!("demo-{number}");
            json!({"name": id, "task_id": {"value": id}, "agent_id": offer["agent_id"],
                   "command": {"value": "echo hello; sleep 30"},
                   "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                                 {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]})
        })
        .collect()
}
