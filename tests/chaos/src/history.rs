//! The recorded history: every client operation with its invocation and completion, in the
//! shape of Jepsen's `invoke` / `ok` / `fail` / `info` events.
//!
//! `ok`: it happened. `fail`: it certainly did not (refused before anything was proposed, or
//! the connection was never made). `info`: unknown (a timeout, a 5xx, a redirect loop): it may
//! take effect at any later moment.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Fail,
    Info,
}

/// One operation, invoked and (unless `info`) completed.
#[derive(Clone, Debug, Serialize)]
pub struct Op {
    /// The client "thread": fresh after an `info`, as Jepsen does, since the old one may still
    /// have its operation in flight.
    pub process: u64,
    pub workload: &'static str,
    pub f: &'static str,
    pub key: String,
    /// What was written, or what a read returned (`null` for a read that failed).
    pub value: Value,
    pub outcome: Outcome,
    /// Nanoseconds since the run started (monotonic).
    pub invoke_ns: u64,
    pub complete_ns: u64,
    /// Milliseconds since the epoch (wall clock), for reading beside master logs.
    pub invoke_wall_ms: u64,
    pub complete_wall_ms: u64,
    /// The master the client sent it to.
    pub node: String,
    pub error: Option<String>,
}

/// The run's clock: monotonic nanoseconds from its start, and wall time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock { start: Instant::now() }
    }

    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn ns_of(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_nanos() as u64
    }

    pub fn wall_ms() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

/// An operation that has been invoked; finish it with [`Pending::complete`].
pub struct Pending {
    pub process: u64,
    pub workload: &'static str,
    pub f: &'static str,
    pub key: String,
    pub value: Value,
    pub node: String,
    invoke_ns: u64,
    invoke_wall_ms: u64,
}

/// Shared by every client of a run. Cheap to clone.
#[derive(Clone)]
pub struct History {
    clock: Clock,
    ops: Arc<Mutex<Vec<Op>>>,
}

impl History {
    pub fn new(clock: Clock) -> History {
        History { clock, ops: Arc::default() }
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    pub fn invoke(
        &self,
        process: u64,
        workload: &'static str,
        f: &'static str,
        key: impl Into<String>,
        value: Value,
        node: impl Into<String>,
    ) -> Pending {
        Pending {
            process,
            workload,
            f,
            key: key.into(),
            value,
            node: node.into(),
            invoke_ns: self.clock.now_ns(),
            invoke_wall_ms: Clock::wall_ms(),
        }
    }

    /// Records the completion, with the masters the request went through (redirects).
    pub fn complete_via(
        &self,
        mut pending: Pending,
        outcome: Outcome,
        value: Option<Value>,
        error: Option<String>,
        path: String,
    ) {
        pending.node = path;
        self.complete(pending, outcome, value, error);
    }

    /// Records the completion. For a read, `value` is what it returned.
    pub fn complete(
        &self,
        pending: Pending,
        outcome: Outcome,
        value: Option<Value>,
        error: Option<String>,
    ) {
        let op = Op {
            process: pending.process,
            workload: pending.workload,
            f: pending.f,
            key: pending.key,
            value: value.unwrap_or(pending.value),
            outcome,
            invoke_ns: pending.invoke_ns,
            complete_ns: self.clock.now_ns(),
            invoke_wall_ms: pending.invoke_wall_ms,
            complete_wall_ms: Clock::wall_ms(),
            node: pending.node,
            error,
        };
        self.ops.lock().unwrap_or_else(PoisonError::into_inner).push(op);
    }

    pub fn ops(&self) -> Vec<Op> {
        let mut ops = self.ops.lock().unwrap_or_else(PoisonError::into_inner).clone();
        ops.sort_by_key(|op| (op.invoke_ns, op.process));
        ops
    }
}

/// The history as Jepsen-style events (`invoke`, then `ok`/`fail`/`info`), in time order.
pub fn jepsen_events(ops: &[Op]) -> Vec<Value> {
    let mut events: Vec<(u64, u8, Value)> = Vec::with_capacity(ops.len() * 2);
    for op in ops {
        let invoked = if op.f == "read" { Value::Null } else { op.value.clone() };
        events.push((
            op.invoke_ns,
            0,
            json!({"type": "invoke", "process": op.process, "workload": op.workload, "f": op.f,
                   "key": op.key, "value": invoked, "time": op.invoke_ns, "wall_ms": op.invoke_wall_ms,
                   "node": op.node}),
        ));
        events.push((
            op.complete_ns,
            1,
            json!({"type": op.outcome, "process": op.process, "workload": op.workload, "f": op.f,
                   "key": op.key, "value": op.value, "time": op.complete_ns,
                   "wall_ms": op.complete_wall_ms, "node": op.node, "error": op.error}),
        ));
    }
    events.sort_by_key(|(time, order, _)| (*time, *order));
    events.into_iter().map(|(_, _, event)| event).collect()
}

/// Reads back what [`jepsen_events`] wrote (one JSON event per line): each invocation paired
/// with its completion. For checking an old run again after a checker fix.
pub fn ops_from_events(lines: &str) -> Result<Vec<Op>, String> {
    let mut open: std::collections::BTreeMap<u64, Value> = std::collections::BTreeMap::new();
    let mut ops = Vec::new();
    let leak = |text: &str| -> &'static str {
        match text {
            "register" => "register",
            "set" => "set",
            "tasks" => "tasks",
            "write" => "write",
            "read" => "read",
            "create" => "create",
            "launch" => "launch",
            _ => "other",
        }
    };
    for (number, line) in lines.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        let event: Value =
            serde_json::from_str(line).map_err(|error| format!("line {}: {error}", number + 1))?;
        let process =
            event["process"].as_u64().ok_or(format!("line {}: no process", number + 1))?;
        let kind = event["type"].as_str().unwrap_or_default();
        if kind == "invoke" {
            open.insert(process, event);
            continue;
        }
        let invoke =
            open.remove(&process).ok_or(format!("line {}: completes nothing", number + 1))?;
        let outcome = match kind {
            "ok" => Outcome::Ok,
            "fail" => Outcome::Fail,
            "info" => Outcome::Info,
            other => return Err(format!("line {}: unknown type {other}", number + 1)),
        };
        ops.push(Op {
            process,
            workload: leak(invoke["workload"].as_str().unwrap_or_default()),
            f: leak(invoke["f"].as_str().unwrap_or_default()),
            key: invoke["key"].as_str().unwrap_or_default().to_owned(),
            value: event["value"].clone(),
            outcome,
            invoke_ns: invoke["time"].as_u64().unwrap_or(0),
            complete_ns: event["time"].as_u64().unwrap_or(0),
            invoke_wall_ms: invoke["wall_ms"].as_u64().unwrap_or(0),
            complete_wall_ms: event["wall_ms"].as_u64().unwrap_or(0),
            node: event["node"].as_str().unwrap_or_default().to_owned(),
            error: event["error"].as_str().map(str::to_owned),
        });
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{jepsen_events, ops_from_events, Op, Outcome};

    #[test]
    fn a_history_reads_back_as_it_was_written() {
        let op = Op {
            process: 4,
            workload: "register",
            f: "write",
            key: "k".to_owned(),
            value: json!(7),
            outcome: Outcome::Info,
            invoke_ns: 10,
            complete_ns: 20,
            invoke_wall_ms: 1,
            complete_wall_ms: 2,
            node: "m1→m2".to_owned(),
            error: Some("timeout".to_owned()),
        };
        let text: Vec<String> =
            jepsen_events(std::slice::from_ref(&op)).iter().map(|e| e.to_string()).collect();
        let back = ops_from_events(&text.join("\n")).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!((back[0].process, back[0].f, back[0].outcome), (4, "write", Outcome::Info));
        assert_eq!(
            (back[0].invoke_ns, back[0].complete_ns, back[0].value.clone()),
            (10, 20, json!(7))
        );
    }
}
