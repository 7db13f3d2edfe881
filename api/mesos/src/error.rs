//! What a malformed Mesos message is refused with: the field at fault and why. The master
//! turns it into a 400 whose JSON body names the field.

/// A field of a Mesos JSON message that cannot be taken as it is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: &str, problem: impl Into<String>) -> FieldError {
        FieldError { field: field.to_owned(), problem: problem.into() }
    }
}
