//! Checkers: each takes what the run recorded (and what the masters' journals say) and
//! returns the violations it found, as data.

pub mod register;
pub mod set;
pub mod stream;
pub mod tasks;
pub mod wgl;

use serde::Serialize;

/// One thing that should not have happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which checker: `linearizable-register`, `set`, `stream`, `tasks`, `convergence`, …
    pub checker: &'static str,
    pub what: String,
}

impl Violation {
    pub fn new(checker: &'static str, what: impl Into<String>) -> Violation {
        Violation { checker, what: what.into() }
    }
}
