//! One module per API, each with its own `router()`; `crate::http::router` composes them.
//! Routes use the shell (`Master`, streams, errors); the shell never uses a route.

pub(crate) mod acl;
pub(crate) mod agent;
pub(crate) mod agent_proxy;
pub(crate) mod audit;
pub(crate) mod authorize;
pub(crate) mod autoscaler;
pub(crate) mod explain;
pub(crate) mod marathon;
pub(crate) mod marathon_apps;
pub(crate) mod members;
pub(crate) mod mesos_dns;
pub(crate) mod misc;
pub(crate) mod native;
pub(crate) mod operator;
pub(crate) mod scheduler;
pub(crate) mod services;
pub(crate) mod settings;
pub(crate) mod snapshot;
pub(crate) mod ui;
pub(crate) mod v0;

/// Leaves out of a rendered role list (`[{"name": …}, …]`) the roles `hidden` names: role
/// lists are drawn from more than the roles the state keeps (reservations, offers), so a copy
/// of the state without them is not enough.
pub(crate) fn retain_visible_roles(list: &mut serde_json::Value, hidden: &corral_state::Hidden) {
    if hidden.roles.is_empty() {
        return;
    }
    if let Some(roles) = list.as_array_mut() {
        roles.retain(|role| {
            role["name"].as_str().is_none_or(|name| {
                !hidden.roles.iter().any(|hidden_role| hidden_role.as_str() == name)
            })
        });
    }
}
