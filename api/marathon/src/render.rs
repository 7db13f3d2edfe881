//! Marathon's JSON for what the state holds: apps, tasks, deployments, queue entries.
//!
//! Every object carries only keys the `marathon` Python client's model constructors accept:
//! that client builds its objects with `cls(**json)`, so one unknown key breaks it.

use corral_state::model::{AppRevision, Deployment, ServiceApp, Task, TaskFailure, TaskState};
use corral_state::{AppId, ClusterState, FrameworkId, TaskId, Timestamp};
use serde_json::{json, Map, Value};

use super::app::AppDefinition;
use super::offers::{AppOffers, NoMatchReason};

/// Marathon's timestamps: ISO 8601 in UTC with milliseconds (`2016-03-21T09:26:18.987Z`).
pub fn iso8601(at: Timestamp) -> String {
    at.to_rfc3339_millis()
}

/// Which optional parts of an app to include (`?embed=apps.tasks,…`).
#[derive(Clone, Copy, Debug, Default)]
pub struct AppEmbeds {
    pub tasks: bool,
    pub counts: bool,
    pub deployments: bool,
    pub last_task_failure: bool,
}

impl AppEmbeds {
    /// What `GET /v2/apps/{id}` always shows.
    pub const SINGLE_APP: AppEmbeds =
        AppEmbeds { tasks: true, counts: true, deployments: true, last_task_failure: true };

    /// Marathon 1.x's `embed` values, with or without the `apps.`/`app.` prefix. Unknown
    /// values are ignored, as Marathon does.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> AppEmbeds {
        // Counts and deployments are on by default for compatibility with Marathon 0.x.
        let mut embeds = AppEmbeds { counts: true, deployments: true, ..AppEmbeds::default() };
        for value in values {
            let name = value.trim_start_matches("apps.").trim_start_matches("app.");
            match name {
                "tasks" => embeds.tasks = true,
                "counts" => embeds.counts = true,
                "deployments" => embeds.deployments = true,
                "lastTaskFailure" => embeds.last_task_failure = true,
                "failures" => {
                    embeds.tasks = true;
                    embeds.last_task_failure = true;
                }
                _ => {}
            }
        }
        embeds
    }
}

/// Reads what the state holds about the built-in framework's tasks, for rendering.
pub struct ServiceView<'a> {
    pub state: &'a ClusterState,
    framework_id: FrameworkId,
}

impl<'a> ServiceView<'a> {
    pub fn new(state: &'a ClusterState) -> ServiceView<'a> {
        ServiceView { state, framework_id: state.service_framework_id() }
    }

    /// The app's live instances, oldest launch first.
    pub fn tasks_of(&self, app_id: &AppId) -> Vec<&'a Task> {
        let mut tasks: Vec<&Task> = self
            .state
            .services()
            .instances_of(app_id)
            .filter_map(|(task_id, _)| self.state.task(&self.framework_id, task_id))
            .collect();
        tasks.sort_by(|a, b| (a.launched_at, a.id()).cmp(&(b.launched_at, b.id())));
        tasks
    }

    pub fn task(&self, task_id: &TaskId) -> Option<&'a Task> {
        self.state.task(&self.framework_id, task_id)
    }

    pub fn app_json(&self, app: &ServiceApp, embeds: AppEmbeds) -> Value {
        let mut object = definition_object(&app.definition, app.spec.instances, &app.service_ports);
        object.insert("id".to_owned(), json!(app.id.as_str()));
        object.insert("version".to_owned(), json!(iso8601(app.version)));
        object.insert(
            "versionInfo".to_owned(),
            json!({
                "lastScalingAt": iso8601(app.version),
                "lastConfigChangeAt": iso8601(app.config_version),
            }),
        );
        let tasks = self.tasks_of(&app.id);
        if embeds.counts {
            let counts = TaskCounts::of(&tasks, app.spec.health_checked);
            object.insert("tasksStaged".to_owned(), json!(counts.staged));
            object.insert("tasksRunning".to_owned(), json!(counts.running));
            object.insert("tasksHealthy".to_owned(), json!(counts.healthy));
            object.insert("tasksUnhealthy".to_owned(), json!(counts.unhealthy));
        }
        if embeds.deployments {
            let deployments: Vec<Value> = self
                .state
                .services()
                .deployments_of(&app.id)
                .map(|deployment| json!({"id": deployment.id.as_str()}))
                .collect();
            object.insert("deployments".to_owned(), Value::Array(deployments));
        }
        if embeds.tasks {
            let rendered: Vec<Value> = tasks
                .iter()
                .map(|task| self.task_json(&app.id, task, app.spec.health_checked))
                .collect();
            object.insert("tasks".to_owned(), Value::Array(rendered));
        }
        if embeds.last_task_failure {
            if let Some(failure) = &app.last_task_failure {
                object.insert("lastTaskFailure".to_owned(), self.failure_json(&app.id, failure));
            }
        }
        Value::Object(object)
    }

    pub fn task_json(&self, app_id: &AppId, task: &Task, health_checked: bool) -> Value {
        let agent = self.state.agent(task.agent_id());
        let host = agent.map_or("", |agent| agent.info.hostname.as_str());
        let ip = agent
            .map(|agent| agent.info.address.rsplit_once(':').map_or("", |(ip, _)| ip))
            .unwrap_or("");
        let ports: Vec<u64> = task
            .resources()
            .ranges("ports")
            .as_slice()
            .iter()
            .flat_map(|&(begin, end)| begin..=end)
            .collect();
        let started_at = task
            .statuses
            .iter()
            .find(|status| status.state == TaskState::Running)
            .map(|status| iso8601(status.timestamp));
        let version = self
            .state
            .services()
            .instance(task.id())
            .map(|instance| iso8601(instance.config_version));
        let mut object = Map::new();
        object.insert("id".to_owned(), json!(task.id().as_str()));
        object.insert("appId".to_owned(), json!(app_id.as_str()));
        object.insert("host".to_owned(), json!(host));
        object.insert("slaveId".to_owned(), json!(task.agent_id().as_str()));
        object.insert("ports".to_owned(), json!(ports));
        let service_ports =
            self.state.services().app(app_id).map_or(&[][..], |app| &app.service_ports[..]);
        object.insert("servicePorts".to_owned(), json!(service_ports));
        object.insert("ipAddresses".to_owned(), json!([{"ipAddress": ip, "protocol": "IPv4"}]));
        object.insert("stagedAt".to_owned(), json!(iso8601(task.launched_at)));
        object.insert("startedAt".to_owned(), json!(started_at));
        object.insert("version".to_owned(), json!(version));
        object.insert("state".to_owned(), json!(task.state.as_mesos_str()));
        object.insert("role".to_owned(), json!(task.role.as_str()));
        if health_checked {
            object.insert("healthCheckResults".to_owned(), health_results(task));
        }
        Value::Object(object)
    }

    fn failure_json(&self, app_id: &AppId, failure: &TaskFailure) -> Value {
        let host = self.state.agent(&failure.agent_id).map_or("", |a| a.info.hostname.as_str());
        json!({
            "appId": app_id.as_str(),
            "host": host,
            "message": failure.message.clone().unwrap_or_default(),
            "taskId": failure.task_id.as_str(),
            "instanceId": failure.task_id.as_str(),
            "slaveId": failure.agent_id.as_str(),
            "state": failure.state.as_mesos_str(),
            "timestamp": iso8601(failure.at),
            "version": iso8601(failure.version),
        })
    }

    /// A queue entry for an app with instances still to launch, or `None` when it has all.
    pub fn queue_item(
        &self,
        app: &ServiceApp,
        offers: Option<&AppOffers>,
        now: Timestamp,
        embed_unused_offers: bool,
    ) -> Option<Value> {
        let waiting = self.waiting_instances(app);
        if waiting == 0 {
            return None;
        }
        let (time_left, overdue) = match &app.launch_delay {
            Some(delay) if delay.until > now => (delay.until.since(now).as_secs_f64(), false),
            _ => (0.0, true),
        };
        let since = self
            .state
            .services()
            .deployments_of(&app.id)
            .map(|deployment| deployment.started_at)
            .min()
            .unwrap_or(app.version);
        let empty = AppOffers::default();
        let offers = offers.unwrap_or(&empty);
        let reject_summary: Vec<Value> = NoMatchReason::ALL
            .iter()
            .map(|reason| {
                json!({
                    "reason": reason,
                    "declined": offers.declined_by.get(reason).copied().unwrap_or(0),
                    "processed": offers.processed,
                })
            })
            .collect();
        let mut object = Map::new();
        object.insert("app".to_owned(), self.app_json(app, AppEmbeds::default()));
        object.insert("count".to_owned(), json!(waiting));
        object.insert("overdue".to_owned(), json!(overdue));
        object
            .insert("delay".to_owned(), json!({"timeLeftSeconds": time_left, "overdue": overdue}));
        object.insert("since".to_owned(), json!(iso8601(since)));
        object.insert(
            "processedOffersSummary".to_owned(),
            json!({
                "processedOffersCount": offers.processed,
                "unusedOffersCount": offers.unused,
                "lastUnusedOfferAt": offers.last_unused_at.map(iso8601),
                "lastUsedOfferAt": offers.last_used_at.map(iso8601),
                "rejectSummaryLastOffers": reject_summary,
                "rejectSummaryLaunchAttempt": reject_summary,
            }),
        );
        if embed_unused_offers {
            let unused: Vec<Value> = offers
                .last_unused
                .iter()
                .map(|offer| {
                    json!({
                        "offer": {
                            "id": offer.offer_id.as_str(),
                            "agentId": offer.agent_id.as_str(),
                            "hostname": offer.hostname,
                        },
                        "reason": offer.reasons,
                        "details": offer.details,
                        "timestamp": iso8601(offer.at),
                    })
                })
                .collect();
            object.insert("lastUnusedOffers".to_owned(), Value::Array(unused));
        }
        Some(Value::Object(object))
    }

    /// Instances of the current configuration the app still needs launched.
    pub fn waiting_instances(&self, app: &ServiceApp) -> u32 {
        app.spec.instances.saturating_sub(self.state.instance_counts(app).current)
    }
}

/// A stored version of an app (`GET /v2/apps/{id}/versions/{version}`).
pub fn revision_json(app_id: &AppId, revision: &AppRevision) -> Value {
    let mut object =
        definition_object(&revision.definition, revision.spec.instances, &revision.service_ports);
    object.insert("id".to_owned(), json!(app_id.as_str()));
    object.insert("version".to_owned(), json!(iso8601(revision.version)));
    object.insert(
        "versionInfo".to_owned(),
        json!({
            "lastScalingAt": iso8601(revision.version),
            "lastConfigChangeAt": iso8601(revision.config_version),
        }),
    );
    Value::Object(object)
}

/// One app's deployment as `GET /v2/deployments` lists it: a plan of one step.
pub fn deployment_json(deployment: &Deployment) -> Value {
    let action = json!({
        "action": deployment.action.as_marathon_str(),
        "app": deployment.app_id.as_str(),
    });
    let current = json!({
        "action": deployment.action.as_marathon_str(),
        "app": deployment.app_id.as_str(),
        "readinessCheckResults": [],
    });
    json!({
        "id": deployment.id.as_str(),
        "version": iso8601(deployment.version),
        "affectedApps": [deployment.app_id.as_str()],
        "affectedPods": [],
        "steps": [{"actions": [action]}],
        "currentActions": [current],
        "currentStep": 1,
        "totalSteps": 1,
    })
}

fn definition_object(
    definition: &str,
    instances: u32,
    service_ports: &[u16],
) -> Map<String, Value> {
    let value = match AppDefinition::from_stored(definition, instances) {
        Ok(app) => serde_json::to_value(app.with_service_ports(service_ports)).expect(
            "an AppDefinition always renders to JSON: string-keyed maps and finite numbers",
        ),
        // A definition this version cannot read is shown as stored rather than hidden.
        Err(_) => serde_json::from_str(definition).unwrap_or_default(),
    };
    match value {
        Value::Object(mut object) => {
            object.insert("instances".to_owned(), json!(instances));
            object
        }
        _ => Map::new(),
    }
}

/// The agent's verdict from the latest status that carried one: Marathon shows one result
/// per health check, and Mesos reports one verdict per task.
fn health_results(task: &Task) -> Value {
    let Some(alive) = task.health() else { return json!([]) };
    let first_success = task
        .statuses
        .iter()
        .find(|status| status.healthy == Some(true))
        .map(|status| iso8601(status.timestamp));
    let last_success = task
        .statuses
        .iter()
        .rev()
        .find(|status| status.healthy == Some(true))
        .map(|status| iso8601(status.timestamp));
    let last_failure = task
        .statuses
        .iter()
        .rev()
        .find(|status| status.healthy == Some(false))
        .map(|status| iso8601(status.timestamp));
    json!([{
        "alive": alive,
        "consecutiveFailures": u32::from(!alive),
        "firstSuccess": first_success,
        "lastSuccess": last_success,
        "lastFailure": last_failure,
        "lastFailureCause": if alive { None } else { task.statuses.last().and_then(|s| s.message.clone()) },
        "taskId": task.id().as_str(),
        "instanceId": task.id().as_str(),
    }])
}

struct TaskCounts {
    staged: u32,
    running: u32,
    healthy: u32,
    unhealthy: u32,
}

impl TaskCounts {
    fn of(tasks: &[&Task], health_checked: bool) -> TaskCounts {
        let mut counts = TaskCounts { staged: 0, running: 0, healthy: 0, unhealthy: 0 };
        for task in tasks {
            match task.state {
                TaskState::Staging | TaskState::Starting => counts.staged += 1,
                TaskState::Running => counts.running += 1,
                _ => {}
            }
            if !health_checked {
                continue;
            }
            match task.health() {
                Some(true) => counts.healthy += 1,
                Some(false) => counts.unhealthy += 1,
                None => {}
            }
        }
        counts
    }
}
