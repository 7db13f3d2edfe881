//! The web UI in a real browser: Debian's headless `chromium` driven over the DevTools
//! protocol against three `corral master` processes, two `corral agent`s, a task that writes
//! to its stdout and a Marathon app. Each page is loaded from a follower and its visible
//! content checked; scaling the app shows new instances without a reload; the task's log
//! shows its output; the time slider shows fewer tasks earlier; after the page's master is
//! killed the page carries on live from another. "Why no offers?" shows the allocator's
//! reasons; Restart and Roll back replace an app's instances through deployments seen to
//! finish; Drain changes an agent's mode in place. Then access control is enforced: the page
//! asks for a token, says plainly when one is refused, and with a good one is live again.
//! Screenshots go to `target/ui-screenshots/`.

mod cdp;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use corral_testkit::agent_process::AgentProcess;
use corral_testkit::cluster::Cluster;
use corral_testkit::eventually;
use corral_testkit::scheduler::RawFramework;

use cdp::Browser;

const LONG: Duration = Duration::from_secs(30);
/// The text a test task writes, looked for in the UI's view of its sandbox.
const GREETING: &str = "hello-from-the-ui-test";

fn screenshots() -> PathBuf {
    let directory = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target tmp dir is inside the target dir")
        .join("ui-screenshots");
    std::fs::create_dir_all(&directory).expect("the screenshot directory");
    directory
}

/// A JavaScript string literal.
fn js(text: &str) -> String {
    json!(text).to_string()
}

/// The visible text of the page's main region contains `needle`.
fn shows(needle: &str) -> String {
    format!("document.querySelector('main').innerText.includes({})", js(needle))
}

async fn get_json(cluster: &Cluster, url: &str) -> Option<Value> {
    let response = cluster.http.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

async fn running_instances(cluster: &Cluster, master: &str, app: &str) -> Option<u64> {
    let answer = get_json(cluster, &format!("http://{master}/v2/apps/{app}")).await?;
    answer["app"]["tasksRunning"].as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_web_ui_shows_the_cluster_live_in_a_real_browser() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader().await;
    let leader_address = cluster.masters[leader].address.clone();
    let directory = tempfile::tempdir().expect("temp dir");
    let _agents: Vec<AgentProcess> = [("ui-a", "rack:a", 24000), ("ui-b", "rack:b", 24100)]
        .into_iter()
        .map(|(host, attributes, ports)| {
            let resources = format!("cpus:2;mem:2048;disk:2048;ports:[{ports}-{}]", ports + 99);
            AgentProcess::start(
                directory.path(),
                host,
                &cluster.addresses(),
                &["--hostname", host, "--attributes", attributes, "--resources", &resources],
            )
        })
        .collect();
    let agent_ids: Vec<String> = eventually(LONG, "two agents registered", || async {
        let slaves = get_json(&cluster, &format!("http://{leader_address}/master/slaves")).await?;
        let ids: Vec<String> = slaves["slaves"]
            .as_array()?
            .iter()
            .filter_map(|agent| agent["id"].as_str().map(str::to_owned))
            .collect();
        (ids.len() == 2).then_some(ids)
    })
    .await;

    let framework = RawFramework::subscribe(&cluster.http, &leader_address, "ui-tester").await;
    framework
        .launch(vec![json!({"id": "greeter", "command": {"value": format!("echo {GREETING}; exec sleep 300")}})])
        .await;
    framework.wait_for("greeter", "TASK_RUNNING").await;
    let created = cluster
        .http
        .post(format!("http://{leader_address}/v2/apps"))
        .json(&json!({"id": "/ui-web", "cmd": "exec sleep 300", "cpus": 0.1, "mem": 32, "instances": 1}))
        .send()
        .await
        .expect("POST /v2/apps");
    assert!(created.status().is_success(), "{}", created.text().await.unwrap_or_default());
    eventually(LONG, "one running instance of /ui-web", || async {
        (running_instances(&cluster, &leader_address, "ui-web").await? == 1).then_some(())
    })
    .await;

    // The page comes from a follower: reads are its own, writes go to the leader.
    let page_master = cluster.follower_of(leader);
    let page_address = cluster.masters[page_master].address.clone();
    let shots = screenshots();
    let browser = Browser::start(1280, 800).await;
    browser.navigate(&format!("http://{page_address}/")).await;

    // Overview: three masters with the leader marked, two agents, the live tasks.
    browser
        .wait_for(
            "the overview with two agents",
            "document.getElementById('agent-count')?.textContent === '2'",
            LONG,
        )
        .await;
    browser
        .wait_for(
            "the stream is live",
            "document.getElementById('conn').classList.contains('live')",
            LONG,
        )
        .await;
    browser.wait_for("the leader's address", &shows(&leader_address), LONG).await;
    for master in &cluster.masters {
        browser
            .wait_for(&format!("master {}", master.address), &shows(&master.address), LONG)
            .await;
    }
    assert_eq!(browser.eval("document.getElementById('task-count').textContent").await, json!("2"));
    browser
        .wait_for(
            "access control is off",
            "document.getElementById('auth-state').textContent === 'access control: off'",
            LONG,
        )
        .await;
    browser.screenshot(&shots.join("overview.png")).await;

    // Agents: both ids; one agent's page with its attributes and actions.
    browser.navigate(&format!("http://{page_address}/#/agents")).await;
    for id in &agent_ids {
        browser.wait_for(&format!("agent {id}"), &shows(id), LONG).await;
    }
    browser.wait_for("the agents' hostnames", &shows("ui-b"), LONG).await;
    browser.screenshot(&shots.join("agents.png")).await;
    browser.navigate(&format!("http://{page_address}/#/agents/{}", agent_ids[0])).await;
    browser.wait_for("the agent's attributes", &shows("rack:"), LONG).await;
    browser.wait_for("the drain action", "!!document.getElementById('agent-drain')", LONG).await;
    // A confirmation comes first; Cancel closes it and the agent stays as it was.
    browser.click("#agent-deactivate").await;
    browser.wait_for("the confirmation", "document.getElementById('confirm').open", LONG).await;
    browser.screenshot(&shots.join("agent-confirm.png")).await;
    browser.click("#confirm-cancel").await;
    browser
        .wait_for("the confirmation closed", "!document.getElementById('confirm').open", LONG)
        .await;
    assert_eq!(
        browser.eval("document.getElementById('agent-mode').textContent").await,
        json!("ACTIVE")
    );
    // Confirmed, the action is sent to the leader and the mode changes in place.
    browser.click("#agent-deactivate").await;
    browser.wait_for("the confirmation", "document.getElementById('confirm').open", LONG).await;
    browser.click("#confirm-ok").await;
    browser
        .wait_for(
            "the agent deactivated",
            "document.getElementById('agent-mode').textContent === 'DEACTIVATED'",
            LONG,
        )
        .await;
    browser.click("#agent-reactivate").await;
    browser.wait_for("the confirmation", "document.getElementById('confirm').open", LONG).await;
    browser.click("#confirm-ok").await;
    browser
        .wait_for(
            "the agent active again",
            "document.getElementById('agent-mode').textContent === 'ACTIVE'",
            LONG,
        )
        .await;

    // Frameworks: the test's framework with its task.
    browser.navigate(&format!("http://{page_address}/#/frameworks")).await;
    browser.wait_for("the framework", &shows(&framework.framework_id), LONG).await;
    browser.wait_for("its name", &shows("ui-tester"), LONG).await;
    browser.screenshot(&shots.join("frameworks.png")).await;
    // "Why no offers?": the leader's allocator explains its last cycle, in sentences.
    browser.click(&format!("a[href='#/frameworks/{}']", framework.framework_id)).await;
    browser
        .wait_for("the framework's page", "!!document.getElementById('explain-offers')", LONG)
        .await;
    browser.click("#explain-offers").await;
    browser
        .wait_for(
            "the allocator's reasons",
            "document.querySelectorAll('#why-no-offers [data-reason]').length > 0 && document.getElementById('why-no-offers').innerText.includes('Offers made')",
            LONG,
        )
        .await;
    browser.screenshot(&shots.join("framework.png")).await;

    // Tasks: listed, filtered by typing, and one task's page with its history and output.
    browser.navigate(&format!("http://{page_address}/#/tasks")).await;
    // The framework's page lists the greeter too: wait for the task list's own filter.
    browser
        .wait_for(
            "the task list",
            &format!("!!document.getElementById('task-filter') && {}", shows("greeter")),
            LONG,
        )
        .await;
    browser.key("/", "Slash", 191).await;
    browser
        .wait_for("the filter focused", "document.activeElement?.id === 'task-filter'", LONG)
        .await;
    browser.type_text("greet").await;
    browser
        .wait_for(
            "one task shown",
            "document.getElementById('task-shown').textContent.startsWith('1 of')",
            LONG,
        )
        .await;
    browser.screenshot(&shots.join("tasks.png")).await;
    browser.click("a[href='#/tasks/greeter']").await;
    browser
        .wait_for(
            "the task's output",
            &format!("document.getElementById('task-log')?.textContent.includes({})", js(GREETING)),
            LONG,
        )
        .await;
    browser.wait_for("the task's history", &shows("accept → task_added"), LONG).await;
    browser
        .wait_for("its running status in the history", &shows("task_updated TASK_RUNNING"), LONG)
        .await;
    browser.screenshot(&shots.join("task.png")).await;

    // Apps: one instance; "Scale" to three shows three without a reload.
    browser.navigate(&format!("http://{page_address}/#/apps")).await;
    let instances = "document.querySelector('[data-instances=\"/ui-web\"]')?.textContent";
    browser.wait_for("one instance", &format!("{instances} === '1 / 1'"), LONG).await;
    browser.eval("window.notReloaded = true").await;
    browser.click("[data-scale-input=\"/ui-web\"]").await;
    browser.eval("document.querySelector('[data-scale-input=\"/ui-web\"]').select()").await;
    browser.type_text("3").await;
    browser.click("[data-scale=\"/ui-web\"]").await;
    browser.wait_for("three running instances", &format!("{instances} === '3 / 3'"), LONG).await;
    assert_eq!(browser.eval("window.notReloaded === true").await, json!(true), "the page reloaded");
    browser.screenshot(&shots.join("apps.png")).await;
    browser.click("a[href='#/apps/ui-web']").await;
    browser
        .wait_for(
            "the app's instances",
            "document.querySelectorAll('[data-app-task]').length === 3",
            LONG,
        )
        .await;
    browser.screenshot(&shots.join("app.png")).await;

    // Events: the feed has task events; unticking "task" hides them.
    browser.navigate(&format!("http://{page_address}/#/events")).await;
    browser
        .wait_for(
            "task events in the feed",
            "document.querySelector('#event-rows tr[data-topic=\"task\"]') !== null",
            LONG,
        )
        .await;
    browser.screenshot(&shots.join("events.png")).await;
    browser.click("[data-topic-filter=\"task\"]").await;
    browser
        .wait_for(
            "no task events",
            "document.querySelector('#event-rows tr[data-topic=\"task\"]') === null",
            LONG,
        )
        .await;

    // Time travel: four live tasks now (the greeter and three instances), fewer at the oldest retained index (keyboard: Home).
    browser.navigate(&format!("http://{page_address}/#/timeline")).await;
    browser
        .wait_for(
            "four live tasks now",
            "document.getElementById('timeline-task-count')?.textContent === '4'",
            LONG,
        )
        .await;
    browser.click("#timeline-slider").await;
    browser.key("Home", "Home", 36).await;
    browser
        .wait_for(
            "fewer tasks at the start",
            "Number(document.getElementById('timeline-task-count')?.textContent) < 4 && document.getElementById('timeline-label').textContent.includes(':')",
            LONG,
        )
        .await;
    browser.screenshot(&shots.join("timeline.png")).await;

    let errors = browser.errors();
    assert!(errors.is_empty(), "the page reported errors: {errors:#?}");

    // Restart: a deployment the page sees finish, and three new instances.
    browser.navigate(&format!("http://{page_address}/#/apps/ui-web")).await;
    let app_tasks = "JSON.stringify([...document.querySelectorAll('[data-app-task]')].map((row) => row.dataset.appTask).sort())";
    let before = browser
        .wait_for(
            "three instances",
            &format!("document.querySelectorAll('[data-app-task]').length === 3 && {app_tasks}"),
            LONG,
        )
        .await;
    browser.click("[data-restart=\"/ui-web\"]").await;
    browser.wait_for("the confirmation", "document.getElementById('confirm').open", LONG).await;
    browser.click("#confirm-ok").await;
    let finished = |count: usize| {
        format!(
            "document.querySelectorAll('[data-deployment-state]').length === {count} && \
             [...document.querySelectorAll('[data-deployment-state]')].every((cell) => cell.textContent === 'finished')"
        )
    };
    let replaced = |running: u32, old: &Value| {
        format!(
            "{} && document.getElementById('app-instances').textContent === '{running} running of {running}' && \
             document.querySelectorAll('[data-app-task]').length === {running} && \
             [...document.querySelectorAll('[data-app-task]')].every((row) => !{old}.includes(row.dataset.appTask))",
            finished(if running == 3 { 1 } else { 2 }),
            old = old.as_str().expect("a JSON list of task ids"),
        )
    };
    browser.wait_for("the restart finished, every instance new", &replaced(3, &before), LONG).await;
    browser.screenshot(&shots.join("app-restarted.png")).await;

    // Roll back to the first version (one instance): another deployment, a new version.
    let version = browser.eval("document.getElementById('app-version').textContent").await;
    let before = browser.eval(app_tasks).await;
    let first = browser
        .eval("[...document.querySelectorAll('[data-rollback]')].map((button) => button.dataset.rollback).sort()[0] ?? null")
        .await;
    let first = first.as_str().expect("an earlier version to roll back to").to_owned();
    browser.click(&format!("[data-rollback=\"{first}\"]")).await;
    browser.wait_for("the confirmation", "document.getElementById('confirm').open", LONG).await;
    browser.click("#confirm-ok").await;
    browser.wait_for("the rollback finished, one new instance", &replaced(1, &before), LONG).await;
    browser
        .wait_for(
            "a new version",
            &format!("document.getElementById('app-version').textContent !== {version}"),
            LONG,
        )
        .await;
    browser.screenshot(&shots.join("app-rolled-back.png")).await;

    // The page's master dies: the page follows another from its cursor, and stays live.
    browser.navigate(&format!("http://{page_address}/#/apps")).await;
    browser.wait_for("one instance", &format!("{instances} === '1 / 1'"), LONG).await;
    cluster.masters[page_master].kill();
    browser
        .wait_for(
            "live from another master",
            &format!("document.getElementById('conn').classList.contains('live') && !document.getElementById('conn').textContent.includes({})", js(&page_address)),
            LONG,
        )
        .await;
    // Leadership may have moved meanwhile (even to the master just killed).
    let leader_now = cluster.masters[cluster.leader().await].address.clone();
    let scaled = cluster
        .http
        .put(format!("http://{leader_now}/v2/apps/ui-web"))
        .json(&json!({"instances": 2}))
        .send()
        .await
        .expect("PUT /v2/apps/ui-web");
    assert!(scaled.status().is_success(), "{}", scaled.text().await.unwrap_or_default());
    browser
        .wait_for(
            "two instances, live after the failover",
            &format!("{instances} === '2 / 2'"),
            LONG,
        )
        .await;
    assert_eq!(browser.eval("window.notReloaded === true").await, json!(true), "the page reloaded");
    // Only requests to the dead master may have failed.
    let errors: Vec<_> = browser
        .errors()
        .into_iter()
        .filter(|error| !(error.source == "network" && error.text.contains(&page_address)))
        .collect();
    assert!(errors.is_empty(), "the page reported errors after the failover: {errors:#?}");

    // Drain: confirmed, the agent's mode changes in place.
    let drained = &agent_ids[1];
    browser.navigate(&format!("http://{leader_now}/#/agents/{drained}")).await;
    browser.wait_for("the drain action", "!!document.getElementById('agent-drain')", LONG).await;
    browser.eval("window.notReloaded = true").await;
    browser.click("#agent-drain").await;
    browser.wait_for("the confirmation", "document.getElementById('confirm').open", LONG).await;
    browser.click("#confirm-ok").await;
    browser
        .wait_for(
            "the agent draining",
            "['DRAINING', 'DRAINED'].includes(document.getElementById('agent-mode').textContent)",
            LONG,
        )
        .await;
    assert_eq!(browser.eval("window.notReloaded === true").await, json!(true), "the page reloaded");
    browser.screenshot(&shots.join("agent-drained.png")).await;

    // Access control on: bootstrap a management token and enforce.
    let answer = cluster
        .http
        .post(format!("http://{leader_now}/corral/v1/acl/bootstrap"))
        .send()
        .await
        .expect("POST /corral/v1/acl/bootstrap");
    assert!(answer.status().is_success(), "bootstrap: {}", answer.status());
    let answer: Value = answer.json().await.expect("the bootstrap answer");
    let token = answer["token"].as_str().expect("the management token").to_owned();
    let enforced = cluster
        .http
        .put(format!("http://{leader_now}/corral/v1/acl/mode"))
        .bearer_auth(&token)
        .json(&json!({"mode": "enforce"}))
        .send()
        .await
        .expect("PUT /corral/v1/acl/mode");
    assert!(enforced.status().is_success(), "{}", enforced.text().await.unwrap_or_default());
    eventually(LONG, "every live master enforcing", || async {
        for master in cluster.masters.iter().filter(|master| master.address != page_address) {
            let status = cluster
                .http
                .get(format!("http://{}/master/state", master.address))
                .send()
                .await
                .ok()?
                .status();
            (status == reqwest::StatusCode::UNAUTHORIZED).then_some(())?;
        }
        Some(())
    })
    .await;

    // A fresh page asks for a token before it reads anything, with the field focused.
    let before_auth = browser.errors().len();
    browser.navigate(&format!("http://{leader_now}/")).await;
    browser
        .wait_for(
            "the token prompt",
            "document.getElementById('auth-message')?.textContent.includes('enter a token') && \
             document.getElementById('auth-state').textContent === 'access control: on · enter a token' && \
             document.activeElement?.id === 'token'",
            LONG,
        )
        .await;
    browser.screenshot(&shots.join("auth-prompt.png")).await;
    // A wrong token: refused, and said so.
    browser.type_text("crl_0123456789abcdef_wrong").await;
    browser.click("#token-use").await;
    browser
        .wait_for(
            "the refusal",
            "document.querySelector('#auth-message.refused')?.textContent.includes('not accepted') && \
             document.getElementById('auth-state').textContent === 'access control: on · token refused'",
            LONG,
        )
        .await;
    browser.screenshot(&shots.join("auth-refused.png")).await;
    // The right one: the cluster, live.
    browser.click("#token").await;
    browser.eval("document.getElementById('token').select()").await;
    browser.type_text(&token).await;
    browser.click("#token-use").await;
    browser
        .wait_for(
            "the overview with the token",
            "document.getElementById('agent-count')?.textContent === '2' && \
             document.getElementById('conn').classList.contains('live') && \
             document.getElementById('auth-state').textContent === 'access control: on · token set'",
            LONG,
        )
        .await;
    browser.navigate(&format!("http://{leader_now}/#/tasks")).await;
    browser.wait_for("the tasks with the token", &shows("greeter"), LONG).await;
    browser.navigate(&format!("http://{leader_now}/#/apps")).await;
    browser
        .wait_for("the app with the token", &format!("{instances}?.endsWith(' / 2')"), LONG)
        .await;
    // Live with the token: a scale made elsewhere shows without a reload.
    browser.eval("window.notReloaded = true").await;
    let scaled = cluster
        .http
        .put(format!("http://{leader_now}/v2/apps/ui-web"))
        .bearer_auth(&token)
        .json(&json!({"instances": 4}))
        .send()
        .await
        .expect("PUT /v2/apps/ui-web");
    assert!(scaled.status().is_success(), "{}", scaled.text().await.unwrap_or_default());
    browser.wait_for("four wanted, live", &format!("{instances}?.endsWith(' / 4')"), LONG).await;
    assert_eq!(browser.eval("window.notReloaded === true").await, json!(true), "the page reloaded");
    browser.screenshot(&shots.join("auth-live.png")).await;
    // Only the wrong token's refusals may have been reported.
    let errors: Vec<_> = browser.errors()[before_auth..]
        .iter()
        .filter(|error| !(error.source == "network" && error.text.contains("401")))
        .cloned()
        .collect();
    assert!(errors.is_empty(), "the page reported errors with access control on: {errors:#?}");
}
