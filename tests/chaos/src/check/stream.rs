//! Event streams followed across reconnections to other masters: each subscriber must see
//! exactly the journal's events after its first cursor, in log order — no gap, no duplicate,
//! never back in time — with the same content every master's journal has.

use std::collections::BTreeMap;

use corral_state::Cursor;
use serde::Serialize;

use super::Violation;

/// What one connection of a subscriber delivered.
#[derive(Clone, Debug, Serialize)]
pub struct Segment {
    pub master: String,
    pub from: String,
    /// Each event's cursor and a hash of its JSON.
    #[serde(skip)]
    pub events: Vec<(Cursor, u64)>,
    pub count: usize,
    pub ended: String,
}

/// One subscriber's whole life: where it started and every connection, in order.
#[derive(Clone, Debug, Serialize)]
pub struct Subscriber {
    pub name: String,
    #[serde(skip)]
    pub start: Cursor,
    pub segments: Vec<Segment>,
}

/// At most this many problems are reported per subscriber; the first is what matters.
const REPORTED_PER_SUBSCRIBER: usize = 5;

/// `reference`: every event of the journal, in log order, with the same hash.
pub fn check(subscribers: &[Subscriber], reference: &[(Cursor, u64)]) -> Vec<Violation> {
    let position: BTreeMap<Cursor, usize> =
        reference.iter().enumerate().map(|(at, (cursor, _))| (*cursor, at)).collect();
    let mut violations = Vec::new();
    for subscriber in subscribers {
        let mut problems = Vec::new();
        // The reference position the next event must have.
        let mut expected = reference.partition_point(|(cursor, _)| *cursor <= subscriber.start);
        let mut last: Option<Cursor> = None;
        for segment in &subscriber.segments {
            for (cursor, hash) in &segment.events {
                let where_ =
                    format!("{} (connection to {} from {})", cursor, segment.master, segment.from);
                if let Some(previous) = last {
                    if *cursor == previous {
                        problems.push(format!("duplicate {where_}"));
                        continue;
                    }
                    if *cursor < previous {
                        problems.push(format!("back in time: {where_} after {previous}"));
                        continue;
                    }
                }
                match position.get(cursor) {
                    None => problems.push(format!("event {where_} is in no journal")),
                    Some(&at) => {
                        if at > expected {
                            let missing = &reference[expected..at];
                            problems.push(format!(
                                "gap before {where_}: {} events missing, first {}",
                                missing.len(),
                                missing[0].0
                            ));
                        }
                        if reference[at].1 != *hash {
                            problems.push(format!("event {where_} differs from the journal's"));
                        }
                        expected = at + 1;
                    }
                }
                last = Some(*cursor);
            }
        }
        let total = problems.len();
        for problem in problems.into_iter().take(REPORTED_PER_SUBSCRIBER) {
            violations.push(Violation::new("stream", format!("{}: {problem}", subscriber.name)));
        }
        if total > REPORTED_PER_SUBSCRIBER {
            violations.push(Violation::new(
                "stream",
                format!("{}: {} more problems", subscriber.name, total - REPORTED_PER_SUBSCRIBER),
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use corral_state::Cursor;

    use super::{check, Segment, Subscriber};

    fn cursor(index: u64, seq: u32) -> Cursor {
        Cursor { index, seq }
    }

    fn reference() -> Vec<(Cursor, u64)> {
        vec![(cursor(3, 0), 30), (cursor(3, 1), 31), (cursor(5, 0), 50), (cursor(8, 0), 80)]
    }

    fn subscriber(segments: Vec<Vec<(Cursor, u64)>>) -> Subscriber {
        Subscriber {
            name: "s1".to_owned(),
            start: Cursor::START,
            segments: segments
                .into_iter()
                .enumerate()
                .map(|(number, events)| Segment {
                    master: format!("m{number}"),
                    from: "0-0".to_owned(),
                    count: events.len(),
                    events,
                    ended: "closed".to_owned(),
                })
                .collect(),
        }
    }

    #[test]
    fn events_split_over_reconnections_pass() {
        let s = subscriber(vec![reference()[..2].to_vec(), reference()[2..].to_vec()]);
        assert!(check(&[s], &reference()).is_empty());
        // A subscriber that starts later owes nothing before its cursor.
        let late =
            Subscriber { start: cursor(3, 1), ..subscriber(vec![reference()[2..].to_vec()]) };
        assert!(check(&[late], &reference()).is_empty());
    }

    #[test]
    fn a_gap_is_reported() {
        let mut events = reference();
        events.remove(2);
        let violations = check(&[subscriber(vec![events])], &reference());
        assert_eq!(violations.len(), 1);
        assert!(violations[0].what.contains("gap before 8-0"), "{}", violations[0].what);
        assert!(violations[0].what.contains("first 5-0"));
    }

    #[test]
    fn a_duplicate_after_reconnecting_is_reported() {
        let s = subscriber(vec![reference()[..2].to_vec(), reference()[1..].to_vec()]);
        let violations = check(&[s], &reference());
        assert_eq!(violations.len(), 1);
        assert!(violations[0].what.contains("duplicate 3-1"), "{}", violations[0].what);
    }

    #[test]
    fn going_back_in_time_after_reconnecting_is_reported() {
        let s = subscriber(vec![reference()[..3].to_vec(), reference()[..1].to_vec()]);
        let violations = check(&[s], &reference());
        assert!(!violations.is_empty());
        assert!(violations[0].what.contains("back in time: 3-0"), "{}", violations[0].what);
    }

    #[test]
    fn an_event_that_differs_or_is_in_no_journal_is_reported() {
        let mut events = reference();
        events[1].1 = 999;
        events.push((cursor(9, 0), 90));
        let violations = check(&[subscriber(vec![events])], &reference());
        let text: Vec<&str> = violations.iter().map(|v| v.what.as_str()).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].contains("3-1") && text[0].contains("differs"));
        assert!(text[1].contains("9-0") && text[1].contains("no journal"));
    }
}
