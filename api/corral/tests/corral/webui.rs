//! The web UI in a real browser: Debian's headless `chromium` driven over the DevTools
//! protocol against three `corral master` processes, two `corral agent`s, a task that writes
//! to its stdout and stderr and a health-checked Marathon app. Each page is loaded from a
//! follower and its visible content checked: the overview's log positions, resources and
//! DRF shares against the API's; scaling the app shows new instances and their health
//! without a reload; an app too big for any agent shows the queue's reason; the task's log
//! shows its output, then a line written after it opened, and its stderr; the time slider
//! shows fewer tasks earlier. The keyboard works (Tab order, the skip link, page keys 1–7,
//! Escape on a confirmation), no page scrolls sideways at 1280×800 and text meets WCAG AA
//! contrast. After the page's master is killed and while no other master's stream can be
//! reached the app is scaled: the page resumes from its cursor on another master
//! (`Last-Event-ID`), shows the scale without a reload and has seen every logged event once.
//! "Why no offers?" shows the allocator's reasons; Restart and Roll back replace an app's
//! instances through deployments seen to finish; Drain changes an agent's mode in place.
//! Then access control is enforced: the page asks for a token, says plainly when one is
//! refused, and with a good one is live again. Screenshots go to `target/ui-screenshots/`.

mod cdp;
mod checks;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use corral_testkit::agent_process::AgentProcess;
use corral_testkit::cluster::Cluster;
use corral_testkit::events::LoggedEvents;
use corral_testkit::eventually;
use corral_testkit::scheduler::RawFramework;

use cdp::Browser;

const LONG: Duration = Duration::from_secs(30);
/// The text a test task writes, looked for in the UI's view of its sandbox.
const GREETING: &str = "hello-from-the-ui-test";
/// What the task writes to its stderr.
const COMPLAINT: &str = "grumble-from-the-ui-test";
/// What the task writes to its stdout once the test, its log open in the page, asks it to.
const LATE_LINE: &str = "written-after-the-page-opened";

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

/// Polls `check` until it agrees, or fails with the last disagreement `check` described.
async fn agree<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let disagreement = match check().await {
            Ok(()) => return,
            Err(disagreement) => disagreement,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {timeout:?} for {what}; the last difference: {disagreement}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A number as the page's `num` writes it: whole ones as they are, others with two decimals.
fn ui_number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// Mebibytes as the page's `mib` writes them.
fn ui_mib(value: f64) -> String {
    if value >= 1024.0 {
        format!("{:.1} GiB", value / 1024.0)
    } else {
        format!("{value:.0} MiB")
    }
}

/// A cursor (`index-sequence`, or `index` alone) as a pair that orders as the log does.
fn cursor_order(cursor: &str) -> (u64, u64) {
    let (index, sequence) = cursor.split_once('-').unwrap_or((cursor, "0"));
    (
        index.parse().expect("a cursor's index is a number"),
        sequence.parse().expect("a cursor's sequence is a number"),
    )
}

/// The overview's members table: matched index and lag per member's address.
const SHOWN_MEMBERS: &str = "Object.fromEntries([...document.querySelectorAll('[data-member]')].map((row) => \
     [row.dataset.member, [row.querySelector('[data-matched]').textContent, row.querySelector('[data-lag]').textContent]]))";

/// The overview's resources used and total, and the share per role, as shown.
const SHOWN_RESOURCES: &str = "({ \
     used: Object.fromEntries([...document.querySelectorAll('[data-used]')].map((cell) => [cell.dataset.used, cell.textContent])), \
     total: Object.fromEntries([...document.querySelectorAll('[data-total]')].map((cell) => [cell.dataset.total, cell.textContent])), \
     shares: Object.fromEntries([...document.querySelectorAll('[data-share]')].map((cell) => [cell.dataset.share, cell.textContent])) })";

/// The overview's log positions lie between two reads of the API around reading the page:
/// each member's matched index between the leader's before and after, its lag no more than
/// the leader's log was ahead of it, and the page's master's applied index likewise.
async fn overview_log_positions_agree(
    cluster: &Cluster,
    browser: &Browser,
    leader: &str,
    page: &str,
) -> Option<()> {
    let before = get_json(cluster, &format!("http://{leader}/corral/v1/cluster")).await?;
    let page_before = get_json(cluster, &format!("http://{page}/corral/v1/cluster")).await?;
    let shown = browser.eval(SHOWN_MEMBERS).await;
    let applied = browser.eval("document.getElementById('applied-index')?.textContent").await;
    let after = get_json(cluster, &format!("http://{leader}/corral/v1/cluster")).await?;
    let page_after = get_json(cluster, &format!("http://{page}/corral/v1/cluster")).await?;
    let members = before["members"].as_array()?;
    if members.len() != 3 || shown.as_object()?.len() != members.len() {
        return None;
    }
    for (member, later) in members.iter().zip(after["members"].as_array()?) {
        let address = member["address"].as_str()?;
        let matched: u64 = shown[address][0].as_str()?.parse().ok()?;
        let lag: u64 = shown[address][1].as_str()?.parse().ok()?;
        let (low, high) = (member["matched_index"].as_u64()?, later["matched_index"].as_u64()?);
        let most_behind = after["last_log_index"].as_u64()?.saturating_sub(low);
        if !(low..=high).contains(&matched) || lag > most_behind {
            return None;
        }
    }
    let applied: u64 = applied.as_str()?.parse().ok()?;
    let (low, high) =
        (page_before["applied_index"].as_u64()?, page_after["applied_index"].as_u64()?);
    (low > 0 && (low..=high).contains(&applied)).then_some(())
}

/// The overview's resources used of total and each role's dominant share are the API's:
/// the agents' totals and uses from `/master/state-summary`, each role's allocation from
/// `/master/roles`, the share the largest fraction of a total it holds.
async fn overview_resources_agree(
    cluster: &Cluster,
    browser: &Browser,
    page: &str,
) -> Result<(), String> {
    let summary =
        get_json(cluster, &format!("http://{page}/master/state-summary?consistency=local"))
            .await
            .ok_or("no state summary")?;
    let roles = get_json(cluster, &format!("http://{page}/master/roles?consistency=local"))
        .await
        .ok_or("no roles")?;
    let shown = browser.eval(SHOWN_RESOURCES).await;
    let kinds = ["cpus", "mem", "disk"];
    let mut total = [0.0; 3];
    let mut used = [0.0; 3];
    for agent in summary["slaves"].as_array().ok_or("no agents")? {
        for (index, kind) in kinds.iter().enumerate() {
            total[index] += agent["resources"][kind].as_f64().ok_or("an agent without a total")?;
            // An agent that uses none of a resource leaves it out, as the page reads it.
            used[index] += agent["used_resources"][kind].as_f64().unwrap_or(0.0);
        }
    }
    if used[0] <= 0.0 {
        return Err("no CPU used".to_owned());
    }
    for (index, kind) in kinds.iter().enumerate() {
        let format = if *kind == "cpus" { ui_number } else { ui_mib };
        if shown["used"][kind] != json!(format(used[index]))
            || shown["total"][kind] != json!(format(total[index]))
            || used[index] > total[index]
        {
            return Err(format!(
                "{kind}: used {} of {} shown as {shown:#}",
                used[index], total[index]
            ));
        }
    }
    let roles = roles["roles"].as_array().ok_or("no list of roles")?;
    if roles.is_empty()
        || shown["shares"].as_object().map(serde_json::Map::len) != Some(roles.len())
    {
        return Err(format!("roles {roles:#?} shown as {shown:#}"));
    }
    let mut busiest = 0.0_f64;
    for role in roles {
        let dominant = kinds
            .iter()
            .enumerate()
            .map(|(index, kind)| role["allocated"][kind].as_f64().unwrap_or(0.0) / total[index])
            .fold(0.0_f64, f64::max);
        busiest = busiest.max(dominant);
        let text = &shown["shares"][role["name"].as_str().ok_or("a role without a name")?];
        let percent = text.as_str().and_then(|text| text.strip_suffix('%')?.parse::<f64>().ok());
        if percent.is_none_or(|percent| (percent - dominant * 100.0).abs() > 0.051) {
            return Err(format!("{role:#} has a dominant share of {dominant}, shown as {text}"));
        }
    }
    if busiest > 0.0 {
        Ok(())
    } else {
        Err(format!("no role holds anything: {roles:#?}"))
    }
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
    // The greeter writes its late line when this file appears.
    let late_flag = directory.path().join("write-the-late-line");
    let greeter = format!(
        "echo {GREETING}; echo {COMPLAINT} >&2; while [ ! -e {flag} ]; do sleep 0.2; done; \
         echo {LATE_LINE}; exec sleep 300",
        flag = late_flag.display()
    );
    framework.launch(vec![json!({"id": "greeter", "command": {"value": greeter}})]).await;
    framework.wait_for("greeter", "TASK_RUNNING").await;
    // Holding its offers, the framework would starve the app's scheduler.
    framework.step_aside().await;
    let created = cluster
        .http
        .post(format!("http://{leader_address}/v2/apps"))
        .json(&json!({"id": "/ui-web", "cmd": "exec sleep 300", "cpus": 0.1, "mem": 32, "instances": 1,
                      "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"},
                                        "gracePeriodSeconds": 30, "intervalSeconds": 1,
                                        "delaySeconds": 0, "timeoutSeconds": 5}]}))
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
    // The log's positions, the resources and the DRF shares are the API's.
    eventually(LONG, "the overview's log index and lag as the API's", || async {
        overview_log_positions_agree(&cluster, &browser, &leader_address, &page_address).await
    })
    .await;
    agree(LONG, "the overview's resources and shares as the API's", || async {
        overview_resources_agree(&cluster, &browser, &page_address).await
    })
    .await;
    checks::assert_readable(&browser, "the overview").await;
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
    checks::assert_readable(&browser, "an agent's page").await;
    // Escape closes a confirmation, as Cancel does; the question had the focus.
    browser.click("#agent-deactivate").await;
    browser
        .wait_for(
            "the confirmation, its Cancel focused",
            "document.getElementById('confirm').open && document.activeElement?.id === 'confirm-cancel'",
            LONG,
        )
        .await;
    browser.key("Escape", "Escape", 27).await;
    browser
        .wait_for(
            "Escape closed the confirmation",
            "!document.getElementById('confirm').open",
            LONG,
        )
        .await;
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
    checks::assert_readable(&browser, "a framework's page").await;
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
    checks::assert_readable(&browser, "a task's page").await;
    browser.screenshot(&shots.join("task.png")).await;
    // Following: what the task writes after its log opened shows in place, after the rest.
    browser.eval("window.logOpened = true").await;
    let log = "(document.getElementById('task-log')?.textContent ?? '')";
    assert_eq!(
        browser.eval(&format!("{log}.includes({})", js(LATE_LINE))).await,
        json!(false),
        "the late line was written before the test asked for it"
    );
    std::fs::write(&late_flag, b"").expect("the late line's flag file");
    browser
        .wait_for(
            "the line written after the log opened",
            &format!(
                "{log}.indexOf({greeting}) >= 0 && {log}.indexOf({late}) > {log}.indexOf({greeting})",
                greeting = js(GREETING),
                late = js(LATE_LINE)
            ),
            LONG,
        )
        .await;
    assert_eq!(browser.eval("window.logOpened === true").await, json!(true), "the page reloaded");
    // The stderr tab shows stderr, and only that.
    browser.click("[data-file='stderr']").await;
    browser
        .wait_for(
            "the task's stderr",
            &format!(
                "document.querySelector('[data-file=stderr]').getAttribute('aria-selected') === 'true' && \
                 {log}.includes({}) && !{log}.includes({})",
                js(COMPLAINT),
                js(GREETING)
            ),
            LONG,
        )
        .await;
    browser.screenshot(&shots.join("task-stderr.png")).await;

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
    // Health: the list's column and each instance say what Marathon's API says.
    browser
        .wait_for(
            "every instance healthy",
            "document.querySelectorAll('[data-task-health]').length === 3 && \
             [...document.querySelectorAll('[data-task-health]')].every((cell) => cell.textContent === 'healthy')",
            LONG,
        )
        .await;
    checks::assert_readable(&browser, "an app's page").await;
    browser.screenshot(&shots.join("app.png")).await;
    browser.navigate(&format!("http://{page_address}/#/apps")).await;
    let healthy = "document.querySelector('[data-healthy=\"/ui-web\"]')?.textContent";
    eventually(LONG, "the health column as the API's", || async {
        let app = get_json(&cluster, &format!("http://{page_address}/v2/apps/ui-web")).await?;
        let api = app["app"]["tasksHealthy"].as_u64()?;
        (api == 3 && browser.eval(healthy).await == json!(api.to_string())).then_some(())
    })
    .await;

    // An app bigger than any agent: the launch queue says which resource its offers lacked.
    let created = cluster
        .http
        .post(format!("http://{leader_address}/v2/apps"))
        .json(&json!({"id": "/ui-huge", "cmd": "exec sleep 300", "cpus": 3, "mem": 32, "instances": 1}))
        .send()
        .await
        .expect("POST /v2/apps");
    assert!(created.status().is_success(), "{}", created.text().await.unwrap_or_default());
    let reasons = eventually(LONG, "the queue's reasons for /ui-huge", || async {
        let queue = get_json(&cluster, &format!("http://{leader_address}/v2/queue")).await?;
        let item =
            queue["queue"].as_array()?.iter().find(|item| item["app"]["id"] == "/ui-huge")?;
        let reasons: Vec<String> = item["processedOffersSummary"]["rejectSummaryLastOffers"]
            .as_array()?
            .iter()
            .filter(|reason| reason["declined"].as_u64() > Some(0))
            .filter_map(|reason| reason["reason"].as_str().map(str::to_owned))
            .collect();
        (!reasons.is_empty()).then_some(reasons)
    })
    .await;
    assert!(reasons.iter().any(|reason| reason == "InsufficientCpus"), "{reasons:?}");
    let shown_reasons =
        "document.querySelector('[data-queue-reasons=\"/ui-huge\"]')?.textContent ?? ''";
    browser
        .wait_for(
            "the queue's reasons for /ui-huge",
            &format!(
                "{}.every((reason) => {shown_reasons}.includes(reason + ': '))",
                json!(reasons)
            ),
            LONG,
        )
        .await;
    // The counts follow the leader's as it matches more offers, though no event says so.
    let shown_cpus =
        format!("(({shown_reasons}).match(/InsufficientCpus: \\d+\\/(\\d+)/) ?? [])[1] ?? null");
    let first = browser.eval(&shown_cpus).await;
    let first: u64 = first.as_str().and_then(|text| text.parse().ok()).expect("a count shown");
    agree(LONG, "the queue's counts following the leader's", || async {
        let processed = || async {
            let queue = get_json(&cluster, &format!("http://{leader_address}/v2/queue")).await?;
            let item =
                queue["queue"].as_array()?.iter().find(|item| item["app"]["id"] == "/ui-huge")?;
            item["processedOffersSummary"]["processedOffersCount"].as_u64()
        };
        let shown = browser.eval(&shown_cpus).await;
        let leaders = processed().await.ok_or("no queue entry")?;
        let shown: u64 = shown.as_str().and_then(|text| text.parse().ok()).ok_or("no count")?;
        if shown > first && shown <= leaders {
            Ok(())
        } else {
            Err(format!("{shown} offers shown, first {first}, the leader's {leaders}"))
        }
    })
    .await;
    browser.screenshot(&shots.join("apps-queue.png")).await;
    let deleted = cluster
        .http
        .delete(format!("http://{leader_address}/v2/apps/ui-huge?force=true"))
        .send()
        .await
        .expect("DELETE /v2/apps/ui-huge");
    assert!(deleted.status().is_success(), "{}", deleted.text().await.unwrap_or_default());
    browser
        .wait_for(
            "the queue empty again",
            "!document.querySelector('[data-queue-app]') && !document.querySelector('[data-app=\"/ui-huge\"]')",
            LONG,
        )
        .await;

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

    // The keyboard, on a freshly loaded page: Tab visits the header, then each app's
    // controls in order; "Skip to content" goes to the page's content; 1–7 switch pages,
    // and none of them scrolls sideways or has text below AA contrast.
    browser.navigate("about:blank").await;
    browser.navigate(&format!("http://{page_address}/#/apps")).await;
    browser.wait_for("three instances", &format!("{instances} === '3 / 3'"), LONG).await;
    checks::assert_tab_order(
        &browser,
        "the apps page",
        &[
            "a Skip to content",
            "a Corral overview",
            "a Overview",
            "a Agents",
            "a Frameworks",
            "a Tasks",
            "a Apps",
            "a Events",
            "a Time travel",
            "a /ui-web",
            "input#scale-/ui-web",
            "button Scale",
            "button Restart",
        ],
    )
    .await;
    browser.eval("document.querySelector('.skip').focus()").await;
    browser.key("Enter", "Enter", 13).await;
    browser
        .wait_for(
            "the content focused, the page kept",
            &format!("document.activeElement?.id === 'main' && location.hash === '#/apps' && {instances} === '3 / 3'"),
            LONG,
        )
        .await;
    let pages = [
        ("overview", "#/", "Cluster overview"),
        ("agents", "#/agents", "Agents ("),
        ("frameworks", "#/frameworks", "Frameworks ("),
        ("tasks", "#/tasks", "Tasks "),
        ("apps", "#/apps", "Marathon apps ("),
        ("events", "#/events", "Live events"),
        ("timeline", "#/timeline", "The cluster at any retained moment"),
    ];
    for (number, (page, hash, heading)) in (1u32..).zip(pages) {
        let key = number.to_string();
        browser.key(&key, &format!("Digit{key}"), 48 + number).await;
        browser
            .wait_for(
                &format!("key {key} shows the {page} page"),
                &format!(
                    "location.hash === {} && document.querySelector('#nav [aria-current=page]')?.dataset.page === {} && \
                     document.querySelector('main h1')?.textContent.startsWith({}) && !document.getElementById('main').hasAttribute('aria-busy')",
                    js(hash),
                    js(page),
                    js(heading)
                ),
                LONG,
            )
            .await;
        checks::assert_readable(&browser, &format!("the {page} page")).await;
    }

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

    // The page's master dies while no other master's stream can be reached: the app is
    // scaled meanwhile, unheard. Let through again, the page follows another master from its
    // cursor and shows the scale without a reload, having seen every logged event once.
    browser.navigate(&format!("http://{page_address}/#/apps")).await;
    browser.wait_for("one instance", &format!("{instances} === '1 / 1'"), LONG).await;
    browser.eval("window.notReloaded = true").await;
    browser.record_requests().await;
    browser.block(&["*/corral/v1/events*"]).await;
    cluster.masters[page_master].kill();
    browser
        .wait_for(
            "the stream down",
            "!document.getElementById('conn').classList.contains('live')",
            LONG,
        )
        .await;
    let cursor = browser.eval("window.corral.stream.cursor").await;
    let cursor = cursor.as_str().expect("the page's cursor").to_owned();
    // Leadership may have moved meanwhile (even from the master just killed).
    let leader_now = cluster.masters[cluster.leader().await].address.clone();
    let scaled = cluster
        .http
        .put(format!("http://{leader_now}/v2/apps/ui-web"))
        .json(&json!({"instances": 2}))
        .send()
        .await
        .expect("PUT /v2/apps/ui-web");
    assert!(scaled.status().is_success(), "{}", scaled.text().await.unwrap_or_default());
    eventually(LONG, "two running instances of /ui-web", || async {
        (running_instances(&cluster, &leader_now, "ui-web").await? == 2).then_some(())
    })
    .await;
    let cluster_now = get_json(&cluster, &format!("http://{leader_now}/corral/v1/cluster"))
        .await
        .expect("the leader's log position");
    let unheard_until = cluster_now["applied_index"].as_u64().expect("an applied index");
    assert_eq!(
        browser.eval(instances).await,
        json!("1 / 1"),
        "the page heard of the scale while every stream was blocked"
    );
    assert_eq!(browser.eval("window.corral.stream.cursor").await, json!(cursor));
    browser.block(&[]).await;
    browser
        .wait_for(
            "two instances, live from another master",
            &format!(
                "document.getElementById('conn').classList.contains('live') && \
                 !document.getElementById('conn').textContent.includes({}) && {instances} === '2 / 2'",
                js(&page_address)
            ),
            LONG,
        )
        .await;
    assert_eq!(browser.eval("window.notReloaded === true").await, json!(true), "the page reloaded");
    // Every attempt to resume, the one let through among them, sent the cursor.
    let resumes: Vec<_> = browser
        .requests()
        .into_iter()
        // A cross-origin stream is preceded by a preflight (OPTIONS), which carries no cursor.
        .filter(|request| request.method == "GET" && request.url.contains("/corral/v1/events"))
        .collect();
    assert!(
        resumes.iter().any(|request| !request.url.contains(&page_address)),
        "no stream asked of another master: {resumes:#?}"
    );
    for request in &resumes {
        assert_eq!(request.header("Last-Event-ID"), Some(cursor.as_str()), "{request:#?}");
    }
    // The page's events: each once, in the log's order; those after the cursor are exactly
    // what the log holds after it, including the scale's, logged while the page was cut off.
    let seen =
        browser.eval("window.corral.events.map((event) => [event.cursor, event.topic])").await;
    let seen: Vec<(String, String)> = serde_json::from_value(seen).expect("cursors and topics");
    for pair in seen.windows(2) {
        assert!(
            cursor_order(&pair[0].0) < cursor_order(&pair[1].0),
            "the page saw {} then {}",
            pair[0].0,
            pair[1].0
        );
    }
    let resumed: Vec<&(String, String)> =
        seen.iter().filter(|(seen, _)| cursor_order(seen) > cursor_order(&cursor)).collect();
    assert!(
        resumed
            .iter()
            .any(|(seen, topic)| topic == "service" && cursor_order(seen).0 <= unheard_until),
        "the scale's events, logged while the page was cut off, were not seen: {resumed:?}"
    );
    let last = &resumed.last().expect("events after the cursor").0;
    let mut logged = LoggedEvents::open(&format!(
        "http://{leader_now}/corral/v1/events?format=ndjson&from={cursor}"
    ))
    .await;
    let deadline = tokio::time::Instant::now() + LONG;
    for (expected, _) in &resumed {
        let line = logged.next_line(deadline, || format!("the log's events up to {last}")).await;
        assert_eq!(line["cursor"].as_str(), Some(expected.as_str()), "the page missed an event");
    }
    // Only requests to the dead master, and the streams blocked, may have failed.
    let errors: Vec<_> = browser
        .errors()
        .into_iter()
        .filter(|error| {
            !(error.source == "network"
                && (error.text.contains(&page_address) || error.text.contains("/corral/v1/events")))
        })
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
