//! `GET /master/tasks`: `{"tasks": [...]}` with Mesos's query parameters `limit` (default
//! 100, `-1` for all), `offset`, `order=asc|desc` (default `desc`), `framework_id` and
//! `task_id`.
//!
//! Mesos orders tasks by start time, which would need an index the state does not keep.
//! Here the order is the state's own: frameworks by id (active and completed ones merged;
//! ids grow with registration, so oldest first), and within a framework the tasks it tracks
//! by id, then its completed tasks oldest first; `desc` is exactly the reverse. A page
//! therefore costs O(frameworks + limit), plus the offset within one framework, never
//! O(tasks): whole frameworks before the offset are skipped by their task counts.

use std::iter::Peekable;
use std::sync::Arc;

use corral_state::model::{Framework, Task};
use corral_state::{ClusterState, FrameworkId, TaskId};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::{task_v0, Sequence};
use crate::FieldError;

/// Mesos's `TASK_LIMIT`.
pub const DEFAULT_LIMIT: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskOrder {
    Ascending,
    Descending,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskLimit {
    All,
    AtMost(usize),
}

/// A validated `/master/tasks` query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskQuery {
    pub limit: TaskLimit,
    pub offset: usize,
    pub order: TaskOrder,
    pub framework_id: Option<FrameworkId>,
    pub task_id: Option<TaskId>,
}

/// The query string's parameters as sent.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct TaskQueryParams {
    pub limit: Option<String>,
    pub offset: Option<String>,
    pub order: Option<String>,
    pub framework_id: Option<String>,
    pub task_id: Option<String>,
}

impl TaskQueryParams {
    /// Checks every parameter; the error names the first one that is wrong.
    pub fn validate(&self) -> Result<TaskQuery, FieldError> {
        let limit = match self.limit.as_deref().map(str::trim) {
            None | Some("") => TaskLimit::AtMost(DEFAULT_LIMIT),
            Some("-1") => TaskLimit::All,
            Some(text) => TaskLimit::AtMost(text.parse::<usize>().map_err(|_| {
                FieldError::new("limit", format!("'{text}' is not -1 (all) or a count of tasks"))
            })?),
        };
        let offset = match self.offset.as_deref().map(str::trim) {
            None | Some("") => 0,
            Some(text) => text.parse::<usize>().map_err(|_| {
                FieldError::new("offset", format!("'{text}' is not a non-negative number"))
            })?,
        };
        let order = match self.order.as_deref() {
            None | Some("desc") => TaskOrder::Descending,
            Some("asc") => TaskOrder::Ascending,
            Some(other) => {
                return Err(FieldError::new("order", format!("'{other}' is not 'asc' or 'desc'")))
            }
        };
        Ok(TaskQuery {
            limit,
            offset,
            order,
            framework_id: non_empty(&self.framework_id).map(FrameworkId::from),
            task_id: non_empty(&self.task_id).map(TaskId::from),
        })
    }
}

impl TaskQuery {
    /// The number of tasks a page can hold, when it is bounded.
    pub fn bound(&self) -> Option<usize> {
        match self.limit {
            TaskLimit::All => None,
            TaskLimit::AtMost(limit) => Some(limit),
        }
    }
}

/// Every framework, active and completed, in id order (or its reverse).
fn frameworks<'a>(
    state: &'a ClusterState,
    order: TaskOrder,
) -> Box<dyn Iterator<Item = &'a Framework> + 'a> {
    let active = state.frameworks().values();
    let completed = state.completed_frameworks().values().map(|c| &c.framework);
    match order {
        TaskOrder::Ascending => Box::new(Merge::new(active, completed, TaskOrder::Ascending)),
        TaskOrder::Descending => {
            Box::new(Merge::new(active.rev(), completed.rev(), TaskOrder::Descending))
        }
    }
}

/// Two framework iterators, each sorted by id in `order`, merged into one.
struct Merge<'a, A: Iterator<Item = &'a Framework>, B: Iterator<Item = &'a Framework>> {
    a: Peekable<A>,
    b: Peekable<B>,
    order: TaskOrder,
}

impl<'a, A, B> Merge<'a, A, B>
where
    A: Iterator<Item = &'a Framework>,
    B: Iterator<Item = &'a Framework>,
{
    fn new(a: A, b: B, order: TaskOrder) -> Self {
        Merge { a: a.peekable(), b: b.peekable(), order }
    }
}

impl<'a, A, B> Iterator for Merge<'a, A, B>
where
    A: Iterator<Item = &'a Framework>,
    B: Iterator<Item = &'a Framework>,
{
    type Item = &'a Framework;

    fn next(&mut self) -> Option<&'a Framework> {
        let take_a = match (self.a.peek(), self.b.peek()) {
            (Some(a), Some(b)) => match self.order {
                TaskOrder::Ascending => a.id <= b.id,
                TaskOrder::Descending => a.id >= b.id,
            },
            (Some(_), None) => true,
            (None, _) => false,
        };
        if take_a {
            self.a.next()
        } else {
            self.b.next()
        }
    }
}

/// One framework's tasks in the page order: tracked tasks by id, then completed ones.
fn framework_tasks<'a>(
    framework: &'a Framework,
    order: TaskOrder,
) -> Box<dyn Iterator<Item = &'a Arc<Task>> + 'a> {
    let tracked = framework.tasks.values();
    let completed = framework.completed_tasks.iter();
    match order {
        TaskOrder::Ascending => Box::new(tracked.chain(completed)),
        TaskOrder::Descending => Box::new(completed.rev().chain(tracked.rev())),
    }
}

/// The tasks of one page, in order. Frameworks wholly before the offset are passed over by
/// their task counts, without visiting their tasks.
pub fn page<'a>(
    state: &'a ClusterState,
    query: &'a TaskQuery,
) -> impl Iterator<Item = &'a Task> + 'a {
    let order = query.order;
    let selected = frameworks(state, order)
        .filter(move |framework| query.framework_id.as_ref().is_none_or(|id| *id == framework.id));
    let tasks: Box<dyn Iterator<Item = &'a Arc<Task>> + 'a> = match &query.task_id {
        Some(task_id) => Box::new(
            selected.flat_map(move |framework| one_task(framework, task_id)).skip(query.offset),
        ),
        None => {
            let mut remaining = query.offset;
            Box::new(selected.flat_map(move |framework| {
                let count = framework.tasks.len() + framework.completed_tasks.len();
                let skip = remaining.min(count);
                remaining -= skip;
                let tasks: Box<dyn Iterator<Item = &'a Arc<Task>> + 'a> = if skip == count {
                    Box::new(std::iter::empty())
                } else {
                    Box::new(framework_tasks(framework, order).skip(skip))
                };
                tasks
            }))
        }
    };
    tasks.take(query.bound().unwrap_or(usize::MAX)).map(|task| task.as_ref())
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|value| !value.is_empty())
}

/// A task by id in one framework: tracked ones by lookup, completed ones by a scan of the
/// bounded completed list (a retried task id may appear there more than once).
fn one_task<'a>(framework: &'a Framework, task_id: &'a TaskId) -> Vec<&'a Arc<Task>> {
    let mut found: Vec<&Arc<Task>> =
        framework.completed_tasks.iter().filter(|task| task.id() == task_id).collect();
    if let Some(task) = framework.tasks.get(task_id) {
        found.push(task);
    }
    found
}

struct TasksPage<'a> {
    state: &'a ClusterState,
    query: &'a TaskQuery,
}

impl Serialize for TasksPage<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("tasks", &Sequence::new(page(self.state, self.query).map(task_v0)))?;
        map.end()
    }
}

/// `{"tasks": [...]}` for one page, written into `out`.
pub fn write_tasks(
    state: &ClusterState,
    query: &TaskQuery,
    out: impl std::io::Write,
) -> serde_json::Result<()> {
    serde_json::to_writer(out, &TasksPage { state, query })
}
