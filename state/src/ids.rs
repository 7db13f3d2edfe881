//! Identifiers. Mesos ids are strings chosen by whoever creates the thing: the master for
//! agents, frameworks and offers; the framework for tasks and executors.

use std::fmt;

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Ids up to 23 bytes are stored inline, so cloning one allocates nothing.
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub SmolStr);

        impl $name {
            pub fn new(value: impl Into<SmolStr>) -> Self {
                Self(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(SmolStr::new(value))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(SmolStr::from(value))
            }
        }
    };
}

string_id!(
    /// Assigned by the master when an agent first registers: `<cluster>-S<n>`.
    AgentId
);
string_id!(
    /// Assigned by the master on a framework's first SUBSCRIBE: `<cluster>-<nnnn>`.
    FrameworkId
);
string_id!(
    /// Chosen by the framework; unique within the framework.
    TaskId
);
string_id!(
    /// Assigned by the master for each offer: `<cluster>-O<n>`.
    OfferId
);
string_id!(
    /// Chosen by the framework.
    ExecutorId
);
string_id!(
    /// Chosen by the framework or operator for an offer operation it wants feedback on.
    OperationId
);
string_id!(
    /// Chosen by the client or the leader; a command with a request id already applied
    /// returns the first outcome instead of applying again.
    RequestId
);
string_id!(
    /// A Marathon app path: `/group/app`, absolute, normalised by the API.
    AppId
);
string_id!(
    /// Chosen by the API for each service deployment (a UUID).
    DeploymentId
);
string_id!(
    /// A status update's uuid, as the agent chose it; acknowledgements name it.
    UpdateUuid
);

/// A role name, possibly hierarchical (`eng/web`). Validated by Mesos's rules.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Role(SmolStr);

impl Role {
    /// The default role of a framework that names none.
    pub fn default_role() -> Role {
        Role(SmolStr::new_static("*"))
    }

    /// Mesos rules: not empty, not `.` or `..`, no leading `-`, no whitespace or `/` at the
    /// ends, no empty path components, no `.`/`..` components; `*` only on its own.
    pub fn parse(text: &str) -> Result<Role, String> {
        if text == "*" {
            return Ok(Role::default_role());
        }
        if text.is_empty() {
            return Err("role is empty".to_owned());
        }
        if text.starts_with('/') || text.ends_with('/') {
            return Err(format!("role '{text}' must not start or end with '/'"));
        }
        for component in text.split('/') {
            if component.is_empty() {
                return Err(format!("role '{text}' has an empty path component"));
            }
            if component == "." || component == ".." {
                return Err(format!("role '{text}' has a '.' or '..' component"));
            }
            if component.starts_with('-') {
                return Err(format!("role '{text}' has a component starting with '-'"));
            }
            if component == "*" {
                return Err(format!("role '{text}' uses '*' as a component"));
            }
            if component.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\') {
                return Err(format!(
                    "role '{text}' contains whitespace, a control character or '\\'"
                ));
            }
        }
        Ok(Role(SmolStr::new(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_default(&self) -> bool {
        self.0 == "*"
    }

    /// `eng/web` → `eng`; top-level roles have none.
    pub fn parent(&self) -> Option<Role> {
        self.0.rsplit_once('/').map(|(parent, _)| Role(SmolStr::new(parent)))
    }

    /// The role itself and then each ancestor, nearest first.
    pub fn self_and_ancestors(&self) -> Vec<Role> {
        let mut chain = vec![self.clone()];
        let mut current = self.parent();
        while let Some(role) = current {
            current = role.parent();
            chain.push(role);
        }
        chain
    }

    pub fn is_same_or_descendant_of(&self, ancestor: &Role) -> bool {
        self.0 == ancestor.0
            || (self.0.len() > ancestor.0.len()
                && self.0.starts_with(ancestor.0.as_str())
                && self.0.as_bytes()[ancestor.0.len()] == b'/')
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
