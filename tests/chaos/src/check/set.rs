//! The set of Marathon apps created with unique ids: every acknowledged create is present on
//! every master at the end, and nothing is present that was never attempted.

use std::collections::{BTreeMap, BTreeSet};

use super::Violation;
use crate::history::{Op, Outcome};

pub const WORKLOAD: &str = "set";

/// `present`: for each master (or journal), the app ids of this workload it holds at the end.
pub fn check(ops: &[Op], present: &BTreeMap<String, BTreeSet<String>>) -> Vec<Violation> {
    let ops: Vec<&Op> = ops.iter().filter(|op| op.workload == WORKLOAD).collect();
    let acknowledged: BTreeSet<&str> =
        ops.iter().filter(|op| op.outcome == Outcome::Ok).map(|op| op.key.as_str()).collect();
    let attempted: BTreeSet<&str> = ops.iter().map(|op| op.key.as_str()).collect();
    let failed: BTreeSet<&str> =
        ops.iter().filter(|op| op.outcome == Outcome::Fail).map(|op| op.key.as_str()).collect();
    let mut violations = Vec::new();
    for (master, ids) in present {
        let lost: Vec<&&str> =
            acknowledged.iter().filter(|id| !ids.contains(**id)).take(20).collect();
        if !lost.is_empty() {
            violations.push(Violation::new(
                "set",
                format!("{master} lost acknowledged creates: {lost:?}"),
            ));
        }
        let invented: Vec<&String> =
            ids.iter().filter(|id| !attempted.contains(id.as_str())).take(20).collect();
        if !invented.is_empty() {
            violations.push(Violation::new(
                "set",
                format!("{master} holds apps never created: {invented:?}"),
            ));
        }
        let resurrected: Vec<&String> =
            ids.iter().filter(|id| failed.contains(id.as_str())).take(20).collect();
        if !resurrected.is_empty() {
            violations.push(Violation::new(
                "set",
                format!("{master} holds apps whose create failed: {resurrected:?}"),
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::Value;

    use super::check;
    use crate::history::{Op, Outcome};

    fn create(id: &str, outcome: Outcome) -> Op {
        Op {
            process: 1,
            workload: super::WORKLOAD,
            f: "create",
            key: id.to_owned(),
            value: Value::Null,
            outcome,
            invoke_ns: 0,
            complete_ns: 1,
            invoke_wall_ms: 0,
            complete_wall_ms: 0,
            node: "m1".to_owned(),
            error: None,
        }
    }

    fn on(master: &str, ids: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
        BTreeMap::from([(master.to_owned(), ids.iter().map(|id| (*id).to_owned()).collect())])
    }

    #[test]
    fn acknowledged_and_unknown_creates_may_be_present() {
        let ops = [create("/a", Outcome::Ok), create("/b", Outcome::Info)];
        assert!(check(&ops, &on("m1", &["/a", "/b"])).is_empty());
        assert!(check(&ops, &on("m1", &["/a"])).is_empty());
    }

    #[test]
    fn a_lost_create_an_invented_app_and_a_failed_one_present_are_reported() {
        let ops = [create("/a", Outcome::Ok), create("/c", Outcome::Fail)];
        let violations = check(&ops, &on("m2", &["/x", "/c"]));
        let text: Vec<&str> = violations.iter().map(|v| v.what.as_str()).collect();
        assert_eq!(violations.len(), 3, "{text:?}");
        assert!(text[0].contains("lost") && text[0].contains("/a"));
        assert!(text[1].contains("never created") && text[1].contains("/x"));
        assert!(text[2].contains("failed") && text[2].contains("/c"));
    }
}
