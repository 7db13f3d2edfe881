//! The verdict on one command, as the audit trail reports it: what the log decided, without
//! the events (the journal keeps those apart).

use serde::{Deserialize, Serialize};

use crate::{Outcome, Rejection};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Accepted,
    Rejected(Rejection),
    /// The request id was applied before; this application changed nothing.
    Duplicate,
}

impl Verdict {
    pub fn of(outcome: &Outcome) -> Verdict {
        match outcome {
            Outcome::Accepted(_) => Verdict::Accepted,
            Outcome::Rejected(rejection) => Verdict::Rejected(rejection.clone()),
            Outcome::Duplicate(_) => Verdict::Duplicate,
        }
    }

    /// `accepted`, `rejected` or `duplicate`: the `outcome` of the audit API.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Rejected(_) => "rejected",
            Verdict::Duplicate => "duplicate",
        }
    }

    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            Verdict::Rejected(rejection) => Some(rejection),
            Verdict::Accepted | Verdict::Duplicate => None,
        }
    }
}
