//! What changed between two states: agents, frameworks, tasks, apps and roles added, removed
//! and changed. Pure; the journal adds the cursor that made each change.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Agent, Framework, RoleConfig, ServiceApp, Task};
use crate::shared::SharedMap;
use crate::{AgentId, AppId, ClusterState, Entity, EntityKind, FrameworkId, Role, TaskId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Change {
    Added,
    Removed,
    Changed,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityChange {
    pub entity: Entity,
    pub change: Change,
}

/// Every entity that differs between `before` and `after`, ordered by kind then id.
///
/// What every heartbeat or offer cycle touches is left out, or a diff would list every
/// agent and framework: an agent's heartbeat and offered resources; a framework's offers,
/// filters, tasks and pending updates (tasks have their own section).
pub fn diff(before: &ClusterState, after: &ClusterState) -> Vec<EntityChange> {
    diff_sections(Sections::of_state(before), Sections::of_state(after))
}

/// What a diff compares, borrowed from a whole state or from an [`Excerpt`].
struct Sections<'a> {
    agents: &'a SharedMap<AgentId, Agent>,
    frameworks: &'a SharedMap<FrameworkId, Framework>,
    tasks: BTreeMap<(&'a FrameworkId, &'a TaskId), &'a Task>,
    apps: &'a SharedMap<AppId, ServiceApp>,
    roles: &'a BTreeMap<Role, RoleConfig>,
}

impl<'a> Sections<'a> {
    fn of_state(state: &'a ClusterState) -> Sections<'a> {
        let tasks = state
            .frameworks
            .values()
            .flat_map(|framework| {
                framework.tasks.iter().map(|(task_id, task)| ((&framework.id, task_id), &**task))
            })
            .collect();
        Sections {
            agents: &state.agents,
            frameworks: &state.frameworks,
            tasks,
            apps: &state.services.apps,
            roles: &state.roles,
        }
    }

    fn of_excerpt(excerpt: &'a Excerpt) -> Sections<'a> {
        let tasks = excerpt
            .tasks
            .iter()
            .map(|((framework_id, task_id), task)| ((framework_id, task_id), &**task))
            .collect();
        Sections {
            agents: &excerpt.agents,
            frameworks: &excerpt.frameworks,
            tasks,
            apps: &excerpt.apps,
            roles: &excerpt.roles,
        }
    }
}

fn diff_sections(before: Sections<'_>, after: Sections<'_>) -> Vec<EntityChange> {
    let mut changes = Vec::new();
    merge(before.agents, after.agents, same_agent, |id, change| {
        changes.push(EntityChange { entity: Entity::agent(id), change })
    });
    merge(before.frameworks, after.frameworks, same_framework, |id, change| {
        changes.push(EntityChange { entity: Entity::framework(id), change })
    });
    let mut tasks = Vec::new();
    merge(
        &before.tasks,
        &after.tasks,
        |a, b| a == b,
        |(_, task_id), change| tasks.push(EntityChange { entity: Entity::task(task_id), change }),
    );
    // Keyed by framework first; the output is ordered by task id like every other section.
    tasks.sort_by(|a, b| a.entity.cmp(&b.entity));
    changes.extend(tasks);
    merge(
        before.apps,
        after.apps,
        |a, b| a == b,
        |id, change| changes.push(EntityChange { entity: Entity::app(id), change }),
    );
    merge(
        before.roles,
        after.roles,
        |a, b| a == b,
        |role, change| changes.push(EntityChange { entity: Entity::role(role), change }),
    );
    changes
}

/// The agents, frameworks, tasks, apps and roles of a state that some entities name: what a
/// diff over a short stretch of the log compares, instead of two whole states.
#[derive(Clone, Debug, Default)]
pub struct Excerpt {
    agents: SharedMap<AgentId, Agent>,
    frameworks: SharedMap<FrameworkId, Framework>,
    tasks: BTreeMap<(FrameworkId, TaskId), std::sync::Arc<Task>>,
    apps: SharedMap<AppId, ServiceApp>,
    roles: BTreeMap<Role, RoleConfig>,
}

impl ClusterState {
    /// Copies what `entities` name (operators and deployments are not part of a diff).
    pub fn excerpt<'a>(&self, entities: impl IntoIterator<Item = &'a Entity>) -> Excerpt {
        let mut excerpt = Excerpt::default();
        for entity in entities {
            let id = entity.id.as_str();
            match entity.kind {
                EntityKind::Agent => {
                    if let Some(agent) = self.agents.get(&AgentId::new(id)) {
                        excerpt.agents.insert(agent.id.clone(), agent.clone());
                    }
                }
                EntityKind::Framework => {
                    if let Some(framework) = self.frameworks.get(&FrameworkId::new(id)) {
                        // Without its tasks and offers: a framework's own fields are compared.
                        let mut framework = Framework {
                            tasks: SharedMap::new(),
                            completed_tasks: Default::default(),
                            ..framework.clone()
                        };
                        framework.offers.clear();
                        excerpt.frameworks.insert(framework.id.clone(), framework);
                    }
                }
                EntityKind::Task => {
                    let task_id = TaskId::new(id);
                    for framework in self.frameworks.values() {
                        if let Some(task) = framework.tasks.get(&task_id) {
                            excerpt
                                .tasks
                                .insert((framework.id.clone(), task_id.clone()), task.clone());
                        }
                    }
                }
                EntityKind::App => {
                    if let Some(app) = self.services.apps.get(&AppId::new(id)) {
                        excerpt.apps.insert(app.id.clone(), app.clone());
                    }
                }
                EntityKind::Role => {
                    if let Some((role, config)) =
                        self.roles.iter().find(|(role, _)| role.as_str() == id)
                    {
                        excerpt.roles.insert(role.clone(), config.clone());
                    }
                }
                EntityKind::Operator | EntityKind::Deployment => {}
            }
        }
        excerpt
    }
}

/// [`diff`] over excerpts: the same rules, for the entities the excerpts were taken for.
pub fn diff_excerpts(before: &Excerpt, after: &Excerpt) -> Vec<EntityChange> {
    diff_sections(Sections::of_excerpt(before), Sections::of_excerpt(after))
}

/// What a diff compares of an agent: one definition for [`same_agent`] and the fingerprint.
#[allow(clippy::type_complexity, reason = "a tuple of borrowed fields, compared and encoded")]
fn agent_compared(
    agent: &Agent,
) -> (
    &crate::model::AgentInfo,
    &crate::Resources,
    &crate::Resources,
    &crate::model::Liveness,
    &crate::model::AgentMode,
    &crate::Timestamp,
    &Option<crate::Timestamp>,
) {
    (
        &agent.info,
        &agent.total,
        &agent.allocated,
        &agent.liveness,
        &agent.mode,
        &agent.registered_at,
        &agent.reregistered_at,
    )
}

/// What a diff compares of a framework (its own fields): one definition for
/// [`same_framework`] and the fingerprint.
#[allow(clippy::type_complexity, reason = "a tuple of borrowed fields, compared and encoded")]
fn framework_compared(
    framework: &Framework,
) -> (
    &crate::model::FrameworkInfo,
    &crate::model::FrameworkState,
    &crate::Timestamp,
    &Option<crate::Timestamp>,
    &std::collections::BTreeSet<Role>,
) {
    (
        &framework.info,
        &framework.state,
        &framework.registered_at,
        &framework.reregistered_at,
        &framework.suppressed_roles,
    )
}

fn same_agent(a: &Agent, b: &Agent) -> bool {
    agent_compared(a) == agent_compared(b)
}

fn same_framework(a: &Framework, b: &Framework) -> bool {
    framework_compared(a) == framework_compared(b)
}

/// What a diff compares of one entity at one point, condensed: a digest of the compared
/// fields per instance, ordered by owner (a task id can name a task in several frameworks:
/// the owner is the framework id; other kinds have one instance with an empty owner). No
/// instances: the entity does not exist there.
///
/// Two fingerprints are equal exactly when [`diff`] finds the values the same (up to a
/// 128-bit digest collision): the digest is over the postcard encoding of the fields the
/// comparison uses, and every compared type has a derived `PartialEq` over fields that
/// encode one way each (no floats, no hash maps).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint(pub Vec<(smol_str::SmolStr, [u8; 16])>);

fn digest_of(value: &impl Serialize) -> [u8; 16] {
    let bytes = postcard::to_allocvec(value).expect(
        "the state's values always encode: snapshots and digests encode the same values (state/tests/state/codec.rs round-trips every kind)",
    );
    let mut digest = [0u8; 16];
    digest.copy_from_slice(&blake3::hash(&bytes).as_bytes()[..16]);
    digest
}

impl ClusterState {
    /// The fingerprint of what a diff compares of `entity` here; `None` for the kinds a diff
    /// leaves out (operators, deployments).
    pub fn fingerprint(&self, entity: &Entity) -> Option<Fingerprint> {
        let id = entity.id.as_str();
        let single = |digest: Option<[u8; 16]>| {
            Fingerprint(
                digest.map(|digest| (smol_str::SmolStr::default(), digest)).into_iter().collect(),
            )
        };
        Some(match entity.kind {
            EntityKind::Agent => single(
                self.agents.get(&AgentId::new(id)).map(|agent| digest_of(&agent_compared(agent))),
            ),
            EntityKind::Framework => single(
                self.frameworks
                    .get(&FrameworkId::new(id))
                    .map(|framework| digest_of(&framework_compared(framework))),
            ),
            EntityKind::Task => {
                let task_id = TaskId::new(id);
                Fingerprint(
                    self.frameworks
                        .values()
                        .filter_map(|framework| {
                            let task = framework.tasks.get(&task_id)?;
                            Some((framework.id.0.clone(), digest_of(&**task)))
                        })
                        .collect(),
                )
            }
            EntityKind::App => single(self.services.apps.get(&AppId::new(id)).map(digest_of)),
            EntityKind::Role => single(
                self.roles
                    .iter()
                    .find(|(role, _)| role.as_str() == id)
                    .map(|(_, config)| digest_of(config)),
            ),
            EntityKind::Operator | EntityKind::Deployment => return None,
        })
    }
}

impl ClusterState {
    /// Every agent, framework, task, app and role here: what a diff can report on.
    pub fn diffed_entities(&self) -> Vec<Entity> {
        let mut entities: Vec<Entity> = self.agents.keys().map(Entity::agent).collect();
        entities.extend(self.frameworks.keys().map(Entity::framework));
        let tasks: std::collections::BTreeSet<&TaskId> =
            self.frameworks.values().flat_map(|framework| framework.tasks.keys()).collect();
        entities.extend(tasks.into_iter().map(Entity::task));
        entities.extend(self.services.apps.keys().map(Entity::app));
        entities.extend(self.roles.keys().map(Entity::role));
        entities
    }
}

/// [`diff`] from fingerprints: for each entity in `touched` (in entity order, each with its
/// fingerprints before and after), what was added, removed and changed, in the order
/// [`diff`] reports them.
pub fn diff_fingerprints<'a>(
    touched: impl IntoIterator<Item = (&'a Entity, &'a Fingerprint, &'a Fingerprint)>,
) -> Vec<EntityChange> {
    let mut changes = Vec::new();
    for (entity, before, after) in touched {
        let (before, after) = (&before.0, &after.0);
        merge(
            before.iter().map(|(owner, digest)| (owner, digest)),
            after.iter().map(|(owner, digest)| (owner, digest)),
            |a, b| a == b,
            |_, change| changes.push(EntityChange { entity: entity.clone(), change }),
        );
    }
    changes
}

/// Walks two ordered maps together: linear, no lookups.
fn merge<'m, K: Ord + 'm, V: 'm>(
    before: impl IntoIterator<Item = (&'m K, &'m V)>,
    after: impl IntoIterator<Item = (&'m K, &'m V)>,
    same: impl Fn(&V, &V) -> bool,
    mut report: impl FnMut(&K, Change),
) {
    let (mut old, mut new) = (before.into_iter().peekable(), after.into_iter().peekable());
    loop {
        match (old.peek(), new.peek()) {
            (None, None) => return,
            (Some((key, _)), None) => {
                report(key, Change::Removed);
                old.next();
            }
            (None, Some((key, _))) => {
                report(key, Change::Added);
                new.next();
            }
            (Some((old_key, old_value)), Some((new_key, new_value))) => {
                match old_key.cmp(new_key) {
                    Ordering::Less => {
                        report(old_key, Change::Removed);
                        old.next();
                    }
                    Ordering::Greater => {
                        report(new_key, Change::Added);
                        new.next();
                    }
                    Ordering::Equal => {
                        if !same(old_value, new_value) {
                            report(old_key, Change::Changed);
                        }
                        old.next();
                        new.next();
                    }
                }
            }
        }
    }
}
