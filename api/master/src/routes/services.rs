//! The service catalog: what a client or a load balancer needs to send traffic to an app.
//!
//! - `GET /corral/v1/services`: `{index, services: [{id, version, configVersion,
//!   servicePorts, labels, healthChecked, instances: [{taskId, agentId, host, ip, ports:
//!   [{number, name, protocol}], state, healthy, ready, draining, killGraceSeconds,
//!   version}]}]}`. `ready` instances take traffic (running, not being killed, healthy when
//!   checked); `draining` ones are being killed and should get no new connections, and
//!   their open ones may go on for `killGraceSeconds` (the time between SIGTERM and SIGKILL
//!   the agent gives the instance: the app's `taskKillGracePeriodSeconds` or the kill's
//!   own; `null` when none is set and the agent's default applies).
//! - `GET /corral/v1/services/{appId}`: one service, `{index, service}`; 404 for an app
//!   that does not exist (with the index, so a poll can wait for it to appear).
//! - `?index=N` long-polls, as Consul's blocking queries do: the answer comes once what was
//!   asked for changed after log index `N`, or when `wait` is up (`30s`, `500ms`, `5m`;
//!   default 60 s, at most 10 min) unchanged. Every answer carries `index` in the body and
//!   in `X-Corral-Index`; pass it back to wait for the next change. Indexes are log
//!   indexes, valid on any master.
//!
//! Changes are also on `/corral/v1/events` under the `service` (apps, deployments) and
//! `task` (instances' states and health) topics.
//!
//! With access control enforced a service is shown as its app is on `/v2/apps`, by
//! `view_apps` on its id: left out of the list, 404 alone.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use corral_dns::{Endpoint, Service};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::catalog::{CatalogView, Watched};
use crate::error::ApiError;
use crate::master::Master;
use crate::routes::marathon_apps::app_id_from_path;

pub(crate) fn router() -> Router<Master> {
    Router::new()
        .route("/corral/v1/services", get(list))
        .route("/corral/v1/services/{*id}", get(one))
}

const DEFAULT_WAIT: Duration = Duration::from_secs(60);
const LONGEST_WAIT: Duration = Duration::from_secs(600);

#[derive(Deserialize)]
struct PollQuery {
    index: Option<String>,
    wait: Option<String>,
}

impl PollQuery {
    fn parse(&self) -> Result<(Option<u64>, Duration), ApiError> {
        let index = self
            .index
            .as_deref()
            .map(|text| {
                text.parse::<u64>().map_err(|_| {
                    ApiError::bad_request("index", format!("'{text}' is not a log index"))
                })
            })
            .transpose()?;
        let wait = match self.wait.as_deref() {
            None => DEFAULT_WAIT,
            Some(text) => {
                parse_wait(text).map_err(|problem| ApiError::bad_request("wait", problem))?
            }
        };
        Ok((index, wait))
    }
}

/// `500ms`, `30s`, `5m`, or plain seconds; at most `LONGEST_WAIT`.
fn parse_wait(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let amount: u64 =
        number.parse().map_err(|_| format!("'{text}' is not a duration such as 30s or 5m"))?;
    let wait = match unit {
        "ms" => Duration::from_millis(amount),
        "s" => Duration::from_secs(amount),
        "m" => Duration::from_secs(amount.saturating_mul(60)),
        _ => return Err(format!("'{text}' has unit '{unit}'; use ms, s or m")),
    };
    if wait > LONGEST_WAIT {
        return Err(format!("'{text}' is longer than the longest wait, 10m"));
    }
    Ok(wait)
}

async fn list(
    State(master): State<Master>,
    Query(query): Query<PollQuery>,
) -> Result<Response, ApiError> {
    let (after, wait) = query.parse()?;
    let CatalogView { catalog, index } =
        master.catalog_after(Watched::Everything, after, wait).await?;
    // As `/v2/apps`: a service is its app, shown by `view_apps` on the app id.
    let services: Vec<Value> = master
        .read_apps_visible(|_, shown| {
            catalog
                .services
                .values()
                .filter(|service| shown(&service.id))
                .map(service_json)
                .collect()
        })
        .await?;
    Ok(with_index(index, json!({"index": index, "services": services})))
}

async fn one(
    State(master): State<Master>,
    Path(id): Path<String>,
    Query(query): Query<PollQuery>,
) -> Result<Response, ApiError> {
    let app_id = app_id_from_path(&id)?;
    let (after, wait) = query.parse()?;
    let CatalogView { catalog, index } =
        master.catalog_after(Watched::Service(&app_id), after, wait).await?;
    let shown = master.read_apps_visible(|_, shown| shown(&app_id)).await?;
    let Some(service) = catalog.services.get(&app_id).filter(|_| shown) else {
        let mut response = ApiError::NotFound(format!("no service {app_id}")).into_response();
        set_index(&mut response, index);
        return Ok(response);
    };
    Ok(with_index(index, json!({"index": index, "service": service_json(service)})))
}

fn with_index(index: u64, body: Value) -> Response {
    let mut response = Json(body).into_response();
    set_index(&mut response, index);
    response
}

fn set_index(response: &mut Response, index: u64) {
    response.headers_mut().insert("x-corral-index", HeaderValue::from(index));
}

fn service_json(service: &Service) -> Value {
    let instances: Vec<Value> = service.instances.iter().map(endpoint_json).collect();
    json!({
        "id": service.id.as_str(),
        "version": service.version.to_rfc3339_millis(),
        "configVersion": service.config_version.to_rfc3339_millis(),
        "servicePorts": service.service_ports,
        "labels": service.labels,
        "healthChecked": service.health_checked,
        "instances": instances,
    })
}

fn endpoint_json(endpoint: &Endpoint) -> Value {
    let ports: Vec<Value> = endpoint
        .ports
        .iter()
        .map(|port| json!({"number": port.number, "name": port.name, "protocol": port.protocol}))
        .collect();
    json!({
        "taskId": endpoint.task_id.as_str(),
        "agentId": endpoint.agent_id.as_str(),
        "host": endpoint.host,
        "ip": endpoint.ip.map(|ip| ip.to_string()),
        "ports": ports,
        "state": endpoint.state.as_mesos_str(),
        "healthy": endpoint.healthy,
        "ready": endpoint.ready,
        "draining": endpoint.draining,
        "killGraceSeconds": endpoint.kill_grace.map(|grace| grace.as_secs_f64()),
        "version": endpoint.config_version.to_rfc3339_millis(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_parse_with_units_and_a_ceiling() {
        assert_eq!(parse_wait("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_wait("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_wait("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_wait("10m"), Ok(LONGEST_WAIT));
        assert!(parse_wait("11m").unwrap_err().contains("longest wait"));
        assert!(parse_wait("3h").unwrap_err().contains("unit 'h'"));
        assert!(parse_wait("soon").unwrap_err().contains("not a duration"));
    }
}
