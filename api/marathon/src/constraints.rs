//! Marathon's placement constraints: may one more instance of an app go to this agent, given
//! where its other instances already are? Pure: the planner passes every placement it knows,
//! including the ones it planned earlier in the same round.

use std::collections::BTreeMap;

use corral_state::model::Attributes;
use regex::Regex;

use super::app::{Constraint, ConstraintOperator};

/// Where an instance runs (or would run), as constraints see it.
#[derive(Clone, Copy, Debug)]
pub struct Placement<'a> {
    pub hostname: &'a str,
    pub attributes: &'a Attributes,
}

impl<'a> Placement<'a> {
    /// `hostname`, or the agent attribute of that name; `None` when the agent lacks it.
    pub fn field(&self, field: &str) -> Option<&'a str> {
        if field == "hostname" {
            return Some(self.hostname);
        }
        self.attributes.get(field)
    }
}

/// The first constraint a placement breaks, with a sentence saying how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnmetConstraint {
    pub constraint: Constraint,
    pub detail: String,
}

/// An app's constraints, with their patterns compiled once per planning round.
pub struct AppConstraints {
    compiled: Vec<(Constraint, Option<Regex>)>,
}

impl AppConstraints {
    pub fn new(constraints: &[Constraint]) -> AppConstraints {
        let compiled = constraints
            .iter()
            .map(|constraint| {
                let pattern = match constraint.operator() {
                    Some(ConstraintOperator::Like | ConstraintOperator::Unlike) => constraint
                        .value()
                        .and_then(|value| Regex::new(&format!("^(?:{value})$")).ok()),
                    _ => None,
                };
                (constraint.clone(), pattern)
            })
            .collect();
        AppConstraints { compiled }
    }

    /// Whether one more instance may run at `candidate`, given the app's other instances at
    /// `placed`.
    pub fn check(
        &self,
        candidate: &Placement<'_>,
        placed: &[Placement<'_>],
    ) -> Result<(), UnmetConstraint> {
        for (constraint, pattern) in &self.compiled {
            if let Err(detail) = check_one(constraint, pattern.as_ref(), candidate, placed) {
                let detail = format!("{} {detail}", describe(constraint));
                return Err(UnmetConstraint { constraint: constraint.clone(), detail });
            }
        }
        Ok(())
    }
}

/// Marathon's own rendering of a constraint, `hostname:UNIQUE`, `rack:GROUP_BY:3`.
pub fn describe(constraint: &Constraint) -> String {
    constraint.0.join(":")
}

fn check_one(
    constraint: &Constraint,
    pattern: Option<&Regex>,
    candidate: &Placement<'_>,
    placed: &[Placement<'_>],
) -> Result<(), String> {
    let (Some(field), Some(operator)) = (constraint.field(), constraint.operator()) else {
        return Err("is not a constraint Corral knows".to_owned());
    };
    let Some(value) = candidate.field(field) else {
        // Marathon: an agent without the attribute meets no constraint on it but UNLIKE.
        if operator == ConstraintOperator::Unlike {
            return Ok(());
        }
        return Err(format!("cannot hold: the agent has no attribute {field}"));
    };
    let placed_values = || placed.iter().filter_map(move |placement| placement.field(field));
    match operator {
        ConstraintOperator::Unique => {
            if placed_values().any(|other| other == value) {
                return Err(format!("is already used on {value}"));
            }
            Ok(())
        }
        ConstraintOperator::Cluster => {
            // Without a value, the first instance picks the value for all the others.
            let wanted = constraint.value().or_else(|| placed_values().next());
            match wanted {
                Some(wanted) if wanted != value => Err(format!("wants {wanted}, not {value}")),
                _ => Ok(()),
            }
        }
        ConstraintOperator::Is => match constraint.value() {
            Some(wanted) if wanted != value => Err(format!("wants {wanted}, not {value}")),
            _ => Ok(()),
        },
        ConstraintOperator::Like => match pattern {
            Some(pattern) if pattern.is_match(value) => Ok(()),
            Some(_) => Err(format!("does not match {value}")),
            None => Err("has an invalid pattern".to_owned()),
        },
        ConstraintOperator::Unlike => match pattern {
            Some(pattern) if pattern.is_match(value) => Err(format!("matches {value}")),
            Some(_) => Ok(()),
            None => Err("has an invalid pattern".to_owned()),
        },
        ConstraintOperator::MaxPer => {
            let maximum = parse_count(constraint.value())?;
            let already = placed_values().filter(|other| *other == value).count();
            if already >= maximum {
                return Err(format!("already has {already} instances on {value}"));
            }
            Ok(())
        }
        ConstraintOperator::GroupBy => {
            let minimum_groups = match constraint.value() {
                None => 0,
                Some(_) => parse_count(constraint.value())?,
            };
            let mut groups: BTreeMap<&str, usize> = BTreeMap::new();
            for other in placed_values() {
                *groups.entry(other).or_default() += 1;
            }
            // As Marathon: a value no instance uses yet always evens the spread out; a used
            // one must be among the smallest groups, once there are enough groups.
            let Some(&count) = groups.get(value) else { return Ok(()) };
            let smallest = groups.values().copied().min().unwrap_or(0);
            if groups.len() < minimum_groups {
                return Err(format!(
                    "wants {minimum_groups} groups but only {} are used; {value} is one of them",
                    groups.len()
                ));
            }
            if count > smallest {
                return Err(format!(
                    "already has {count} instances on {value}, the smallest group {smallest}"
                ));
            }
            Ok(())
        }
    }
}

fn parse_count(value: Option<&str>) -> Result<usize, String> {
    value
        .and_then(|value| value.trim().parse::<usize>().ok())
        .ok_or_else(|| format!("needs a count, not {}", value.unwrap_or("nothing")))
}
