//! A minimal in-test master for the agent's own tests: the agent-facing API (commands and
//! the agent's event stream) over real HTTP on loopback, deciding with a real
//! `ClusterState` (no Raft: one replica, applied in arrival order). The test plays the
//! framework through it: subscribe, offer, launch, kill. The masters' own tests use the
//! real agent the same way the other way round.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use corral_state::model::{FrameworkInfo, Settings, TaskInfo, TaskState};
use corral_state::{
    Actor, AgentId, ClusterState, Command, Cursor, Entry, Event, FrameworkId, OfferSpec, Operation,
    Outcome, RequestId, Role, TaskId, Timestamp,
};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

#[derive(Clone)]
pub struct TestMaster {
    pub address: String,
    inner: Arc<Inner>,
}

struct Inner {
    world: Mutex<World>,
    /// Bumped after every applied command, so open event streams look again.
    changes: watch::Sender<u64>,
}

struct World {
    state: ClusterState,
    /// Every event with its cursor, in log order.
    journal: Vec<(Cursor, Event)>,
    next_index: u64,
    next_request: u64,
    framework_id: Option<FrameworkId>,
}

fn now() -> Timestamp {
    Timestamp(SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_nanos() as u64)
}

impl TestMaster {
    /// Starts on a free loopback port; `name` makes the cluster id (and so every agent and
    /// framework id) unique to the test, keeping cgroups and containers of parallel tests
    /// apart.
    pub async fn start(name: &str) -> TestMaster {
        let settings = Settings {
            cluster_id: format!("{name}-{}", std::process::id()),
            ..Settings::default()
        };
        let inner = Arc::new(Inner {
            world: Mutex::new(World {
                state: ClusterState::new(settings),
                journal: Vec::new(),
                next_index: 1,
                next_request: 0,
                framework_id: None,
            }),
            changes: watch::Sender::new(0),
        });
        let router = Router::new()
            .route("/corral/v1/agent/commands", post(command))
            .route("/corral/v1/agent/{agent_id}/events", get(events))
            // Access control is off, as a new cluster's is: the agent's API is open.
            .route(
                "/corral/v1/acl/authorize",
                post(|| async {
                    axum::Json(serde_json::json!({"mode": "off", "verdict": "allow"}))
                }),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        tokio::spawn(async move {
            axum::serve(listener, router).await.expect("the test master serves");
        });
        TestMaster { address, inner }
    }

    fn apply(&self, actor: Actor, request_id: Option<String>, command: Command) -> (u64, Outcome) {
        let (index, outcome) = {
            let mut world = self.inner.world.lock().expect("world lock");
            world.apply(actor, request_id, command)
        };
        self.inner.changes.send_modify(|version| *version += 1);
        (index, outcome)
    }

    fn accepted(&self, actor: Actor, command: Command) -> Vec<Event> {
        match self.apply(actor, None, command) {
            (_, Outcome::Accepted(events)) => events,
            (_, other) => panic!("the test master refused a test command: {other:?}"),
        }
    }

    /// The only agent registered so far.
    pub fn agent_id(&self) -> AgentId {
        let world = self.inner.world.lock().expect("world lock");
        let agents: Vec<_> = world.state.agents().keys().cloned().collect();
        assert_eq!(agents.len(), 1, "exactly one agent registered: {agents:?}");
        agents[0].clone()
    }

    /// The address the agent registered with.
    pub fn agent_address(&self) -> String {
        let agent_id = self.agent_id();
        let world = self.inner.world.lock().expect("world lock");
        world.state.agents()[&agent_id].info.address.clone()
    }

    pub fn framework_id(&self) -> FrameworkId {
        let existing = self.inner.world.lock().expect("world lock").framework_id.clone();
        if let Some(framework_id) = existing {
            return framework_id;
        }
        let info = FrameworkInfo {
            user: "root".to_owned(),
            name: "agent-tests".to_owned(),
            roles: vec![Role::parse("*").expect("role")],
            failover_timeout: Duration::from_secs(3600),
            checkpoint: true,
            hostname: None,
            principal: None,
            webui_url: None,
            capabilities: Default::default(),
            labels: Vec::new(),
        };
        let events = self.accepted(Actor::Leader, Command::Subscribe { framework_id: None, info });
        let framework_id = events
            .iter()
            .find_map(|event| match event {
                Event::FrameworkAdded { framework_id, .. } => Some(framework_id.clone()),
                _ => None,
            })
            .expect("the framework was added");
        self.inner.world.lock().expect("world lock").framework_id = Some(framework_id.clone());
        framework_id
    }

    /// Offers the task's resources on the agent and launches it there, as a framework would.
    pub fn launch(&self, mut task: TaskInfo) {
        let framework_id = self.framework_id();
        let agent_id = self.agent_id();
        task.agent_id = agent_id.clone();
        let offer = OfferSpec {
            framework_id: framework_id.clone(),
            agent_id,
            role: Role::parse("*").expect("role"),
            resources: task.resources.clone(),
        };
        let events = self.accepted(Actor::Leader, Command::OfferResources { offers: vec![offer] });
        let offer_id = events
            .iter()
            .find_map(|event| match event {
                Event::OfferCreated { offer } => Some(offer.id.clone()),
                _ => None,
            })
            .expect("an offer was made");
        let events = self.accepted(
            Actor::Framework(framework_id.clone()),
            Command::Accept {
                framework_id,
                offer_ids: vec![offer_id],
                operations: vec![Operation::Launch { task_infos: vec![task] }],
                filters: Default::default(),
            },
        );
        assert!(
            events.iter().any(|event| matches!(event, Event::TaskAdded { .. })),
            "the task was not added: {events:?}"
        );
    }

    pub fn kill(&self, task_id: &str) {
        let framework_id = self.framework_id();
        self.accepted(
            Actor::Framework(framework_id.clone()),
            Command::Kill {
                framework_id,
                task_id: TaskId::new(task_id),
                agent_id: Some(self.agent_id()),
                kill_policy: None,
            },
        );
    }

    /// The task's state as the log has it (the agent's committed updates).
    pub fn task_state(&self, task_id: &str) -> Option<TaskState> {
        let framework_id = self.framework_id();
        let world = self.inner.world.lock().expect("world lock");
        world.state.task(&framework_id, &TaskId::new(task_id)).map(|task| task.state)
    }

    /// Waits until the log has the task in `state`.
    pub async fn wait_for_state(&self, task_id: &str, state: TaskState) {
        let deadline = tokio::time::Instant::now() + crate::support::DEADLINE;
        let mut changes = self.inner.changes.subscribe();
        loop {
            let current = self.task_state(task_id);
            if current == Some(state) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "task {task_id} did not reach {state:?}; it is {current:?}"
            );
            let _ = tokio::time::timeout_at(deadline, changes.changed()).await;
        }
    }
}

impl World {
    fn apply(
        &mut self,
        actor: Actor,
        request_id: Option<String>,
        command: Command,
    ) -> (u64, Outcome) {
        self.next_request += 1;
        let request_id = request_id.unwrap_or_else(|| format!("test-{}", self.next_request));
        let entry = Entry { request_id: RequestId::new(request_id), actor, at: now(), command };
        let index = self.next_index;
        self.next_index += 1;
        let outcome = self.state.apply(&entry);
        if let Outcome::Accepted(events) = &outcome {
            for (seq, event) in events.iter().enumerate() {
                self.journal.push((Cursor::new(index, seq as u32), event.clone()));
            }
        }
        (index, outcome)
    }
}

#[derive(Deserialize)]
struct AgentCommand {
    request_id: String,
    agent_id: Option<AgentId>,
    command: Command,
}

async fn command(State(inner): State<Arc<Inner>>, Json(request): Json<AgentCommand>) -> Response {
    let actor = match request.agent_id {
        Some(agent_id) => Actor::Agent(agent_id),
        None => Actor::Leader,
    };
    let (index, outcome) = {
        let mut world = inner.world.lock().expect("world lock");
        world.apply(actor, Some(request.request_id), request.command)
    };
    inner.changes.send_modify(|version| *version += 1);
    let rejected = matches!(&outcome, Outcome::Rejected(_))
        || matches!(&outcome, Outcome::Duplicate(first) if matches!(**first, Outcome::Rejected(_)));
    let status = if rejected { StatusCode::CONFLICT } else { StatusCode::OK };
    let body = json!({"index": index, "first_event": Cursor::new(index, 0).to_string(), "outcome": outcome});
    (status, Json(body)).into_response()
}

#[derive(Deserialize)]
struct EventsQuery {
    from: Option<String>,
}

/// NDJSON of the agent's events after `from`, then live, as the masters serve it.
async fn events(
    State(inner): State<Arc<Inner>>,
    Path(agent_id): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Response {
    let agent_id = AgentId::from(agent_id);
    let from: Cursor = match query.from.as_deref().map(str::parse) {
        Some(Ok(cursor)) => cursor,
        Some(Err(_)) => return (StatusCode::BAD_REQUEST, "bad cursor").into_response(),
        None => Cursor::START,
    };
    let changes = inner.changes.subscribe();
    let start = Stream { inner, changes, agent_id, after: from, queued: VecDeque::new() };
    let lines = futures::stream::unfold(start, |mut stream| async move {
        let line = stream.next_line().await?;
        Some((Ok::<_, std::io::Error>(line), stream))
    });
    ([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(lines)).into_response()
}

/// One open event stream: what it has sent up to, and lines waiting to go.
struct Stream {
    inner: Arc<Inner>,
    changes: watch::Receiver<u64>,
    agent_id: AgentId,
    after: Cursor,
    queued: VecDeque<String>,
}

impl Stream {
    async fn next_line(&mut self) -> Option<String> {
        loop {
            if let Some(line) = self.queued.pop_front() {
                return Some(line);
            }
            {
                let world = self.inner.world.lock().expect("world lock");
                for (cursor, event) in &world.journal {
                    if *cursor <= self.after {
                        continue;
                    }
                    if event.agent_id() == Some(&self.agent_id) {
                        let line = json!({"cursor": cursor.to_string(), "event": event});
                        self.queued.push_back(format!("{line}\n"));
                    }
                    self.after = *cursor;
                }
            }
            if !self.queued.is_empty() {
                continue;
            }
            // Heartbeats as the masters send them: the agent gives up on a silent stream.
            match tokio::time::timeout(std::time::Duration::from_secs(1), self.changes.changed())
                .await
            {
                Ok(changed) => changed.ok()?,
                Err(_) => return Some("{\"kind\":\"heartbeat\"}\n".to_owned()),
            }
        }
    }
}
