//! Per-key linearizability of the role-weight registers, with a Wing–Gong/Lowe search
//! (`wgl.rs`, checked against stateright's `LinearizabilityTester` in its tests).
//!
//! `ok` → call and return; `fail` → neither (it had no effect); `info` → call only: the write
//! may take effect at any later point or never. Each key is checked on its own
//! (P-compositionality); a key's history is kept short by the workload (keys rotate).

use std::collections::BTreeMap;

use super::wgl::{linearizable, RegisterOp, Timed};
use super::Violation;
use crate::history::{Op, Outcome};

pub const WORKLOAD: &str = "register";

/// How a key was checked.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RegisterSummary {
    pub keys: usize,
    pub largest_key_ops: usize,
    pub check_millis: u128,
}

/// The register's value as the workload records it: a weight written as an integer, 0 for a
/// role with no weight set yet.
fn value_of(op: &Op) -> Option<u64> {
    op.value.as_u64()
}

pub fn check(ops: &[Op]) -> (Vec<Violation>, RegisterSummary) {
    let started = std::time::Instant::now();
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops.iter().filter(|op| op.workload == WORKLOAD) {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let mut violations = Vec::new();
    let mut summary = RegisterSummary { keys: by_key.len(), ..RegisterSummary::default() };
    for (key, key_ops) in by_key {
        summary.largest_key_ops = summary.largest_key_ops.max(key_ops.len());
        if let Err(problem) = check_key(&key_ops) {
            violations.push(Violation::new(
                "linearizable-register",
                format!("key {key}: {problem}; its history:\n{}", describe(&key_ops)),
            ));
        }
    }
    summary.check_millis = started.elapsed().as_millis();
    (violations, summary)
}

fn check_key(ops: &[&Op]) -> Result<(), String> {
    let mut timed = Vec::with_capacity(ops.len());
    for op in ops {
        let ret = match (op.outcome, op.f) {
            // A failed operation had no effect; a read that did not answer tells nothing.
            (Outcome::Fail, _) | (Outcome::Info, "read") => continue,
            (Outcome::Info, _) => None,
            (Outcome::Ok, _) => Some(op.complete_ns),
        };
        let value = value_of(op).ok_or_else(|| format!("{} without a value", op.f))?;
        let operation = match op.f {
            "write" => RegisterOp::Write(value),
            _ => RegisterOp::Read(value),
        };
        timed.push(Timed { op: operation, call: op.invoke_ns, ret });
    }
    match linearizable(0, &timed) {
        Some(true) => Ok(()),
        Some(false) => Err("not linearizable".to_owned()),
        None => Err(format!(
            "unknown: the search passed {} configurations without a verdict",
            super::wgl::BUDGET
        )),
    }
}

fn describe(ops: &[&Op]) -> String {
    let mut lines: Vec<String> = ops
        .iter()
        .filter(|op| op.outcome != Outcome::Fail)
        .map(|op| {
            format!(
                "  p{} {} {} {:?} [{:.3}s..{:.3}s] via {}",
                op.process,
                op.f,
                op.value,
                op.outcome,
                op.invoke_ns as f64 / 1e9,
                op.complete_ns as f64 / 1e9,
                op.node
            )
        })
        .collect();
    // The first violation is usually near the end of a short history; keep the report short.
    if lines.len() > 40 {
        let tail = lines.split_off(lines.len() - 40);
        lines = tail;
        lines.insert(0, "  …".to_owned());
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::check;
    use crate::history::{Op, Outcome};

    fn op(process: u64, f: &'static str, value: u64, outcome: Outcome, from: u64, to: u64) -> Op {
        Op {
            process,
            workload: super::WORKLOAD,
            f,
            key: "role-a".to_owned(),
            value: json!(value),
            outcome,
            invoke_ns: from,
            complete_ns: to,
            invoke_wall_ms: 0,
            complete_wall_ms: 0,
            node: "m1".to_owned(),
            error: None,
        }
    }

    #[test]
    fn a_sequential_history_passes() {
        let mut failed_read = op(3, "read", 0, Outcome::Fail, 5, 6);
        failed_read.value = serde_json::Value::Null;
        let history = [
            failed_read,
            op(1, "write", 5, Outcome::Ok, 0, 10),
            op(2, "read", 5, Outcome::Ok, 20, 30),
            op(1, "write", 6, Outcome::Ok, 40, 50),
            op(2, "read", 6, Outcome::Ok, 60, 70),
        ];
        let (violations, summary) = check(&history);
        assert!(violations.is_empty(), "{violations:?}");
        assert_eq!(summary.keys, 1);
    }

    #[test]
    fn a_lost_write_is_reported() {
        // The write was acknowledged, yet a read that starts after it sees the old value.
        let history =
            [op(1, "write", 5, Outcome::Ok, 0, 10), op(2, "read", 0, Outcome::Ok, 20, 30)];
        let (violations, _) = check(&history);
        assert_eq!(violations.len(), 1);
        assert!(violations[0].what.contains("not linearizable"), "{}", violations[0].what);
    }

    #[test]
    fn a_stale_read_is_reported() {
        // A deposed leader answering a "linearizable" read from its old state.
        let history = [
            op(1, "write", 5, Outcome::Ok, 0, 10),
            op(1, "write", 6, Outcome::Ok, 20, 30),
            op(2, "read", 5, Outcome::Ok, 40, 50),
        ];
        assert_eq!(check(&history).0.len(), 1);
    }

    #[test]
    fn an_unknown_write_may_take_effect_late_but_a_failed_one_never() {
        let late = [
            op(1, "write", 5, Outcome::Info, 0, 10),
            op(2, "read", 0, Outcome::Ok, 20, 30),
            op(3, "read", 5, Outcome::Ok, 40, 50),
        ];
        assert!(check(&late).0.is_empty());
        let failed =
            [op(1, "write", 5, Outcome::Fail, 0, 10), op(2, "read", 5, Outcome::Ok, 20, 30)];
        assert_eq!(check(&failed).0.len(), 1, "a read saw a write that failed");
        // Once seen, an unknown write cannot be unseen.
        let flicker = [
            op(1, "write", 5, Outcome::Info, 0, 10),
            op(2, "read", 5, Outcome::Ok, 20, 30),
            op(3, "read", 0, Outcome::Ok, 40, 50),
        ];
        assert_eq!(check(&flicker).0.len(), 1);
    }

    #[test]
    fn concurrent_operations_may_be_ordered_either_way() {
        let history = [
            op(1, "write", 5, Outcome::Ok, 0, 100),
            op(2, "read", 5, Outcome::Ok, 10, 20),
            op(3, "read", 0, Outcome::Ok, 5, 15),
        ];
        assert!(check(&history).0.is_empty());
    }
}
