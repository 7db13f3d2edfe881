//! Mesos-DNS's HTTP API on the master port, from the same records the DNS server answers
//! with: `GET /v1/version`, `/v1/config`, `/v1/enumerate`, `/v1/hosts/{host}` (`[{host,
//! ip}]`), `/v1/services/{service}` (`[{service, host, ip, port}]`, the port a string as
//! Mesos-DNS writes it). Any master answers from what it has applied; no redirect.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use corral_dns::{RecordData, Records};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::master::Master;

pub(crate) fn router() -> Router<Master> {
    Router::new()
        .route("/v1/version", get(version))
        .route("/v1/config", get(config))
        .route("/v1/enumerate", get(enumerate))
        .route("/v1/hosts/{host}", get(hosts))
        .route("/v1/services/{service}", get(services))
}

async fn version() -> Json<Value> {
    Json(json!({
        "Service": "Mesos-DNS",
        "Version": env!("CARGO_PKG_VERSION"),
        "URL": "https://github.com/mesosphere/mesos-dns",
    }))
}

async fn config(State(master): State<Master>) -> Json<Value> {
    let config = master.dns_config();
    let domain = config.domain.trim_matches('.').to_ascii_lowercase();
    let members: Vec<String> =
        master.node().status().members.into_iter().map(|member| member.address).collect();
    Json(json!({
        // Records follow the applied state; nothing is polled.
        "RefreshSeconds": 0,
        "TTL": config.ttl,
        "Domain": domain,
        "Port": config.listen.map(|address| address.port()),
        "Listener": config.listen.map(|address| address.ip().to_string()),
        "Masters": members,
        "HTTPOn": true,
        "DNSOn": config.listen.is_some(),
        "ExternalOn": false,
        "RecurseOn": false,
        "SOAMname": format!("ns1.{domain}."),
        "SOARname": format!("root.ns1.{domain}."),
        "SOARefresh": 60,
        "SOARetry": 600,
        "SOAExpire": 86_400,
        "SOAMinttl": 60,
        "IPSources": ["host"],
    }))
}

async fn enumerate(State(master): State<Master>) -> Result<Json<Value>, ApiError> {
    let records = master.dns_records().await?;
    let frameworks: Vec<Value> = records
        .frameworks
        .iter()
        .map(|(name, tasks)| {
            let tasks: Vec<Value> = tasks
                .iter()
                .map(|task| {
                    let listed: Vec<Value> = task
                        .records
                        .iter()
                        .map(|record| {
                            let (rtype, host) = match &record.data {
                                RecordData::A { ip } => ("A", ip.to_string()),
                                RecordData::Srv { port, target, .. } => {
                                    ("SRV", format!("{target}:{port}"))
                                }
                                RecordData::Ns { host } => ("NS", host.clone()),
                                RecordData::Soa { mname, .. } => ("SOA", mname.clone()),
                            };
                            json!({"name": record.name, "host": host, "rtype": rtype})
                        })
                        .collect();
                    json!({"name": task.name, "id": task.id, "records": listed})
                })
                .collect();
            json!({"name": name, "tasks": tasks})
        })
        .collect();
    Ok(Json(json!({"frameworks": frameworks})))
}

fn fully_qualified(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

fn addresses(records: &Records, name: &str) -> Vec<String> {
    records
        .at(name)
        .into_iter()
        .flatten()
        .filter_map(|data| match data {
            RecordData::A { ip } => Some(ip.to_string()),
            _ => None,
        })
        .collect()
}

async fn hosts(
    State(master): State<Master>,
    Path(host): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let records = master.dns_records().await?;
    let host = fully_qualified(&host);
    let answers: Vec<Value> =
        addresses(&records, &host).into_iter().map(|ip| json!({"host": host, "ip": ip})).collect();
    Ok(Json(Value::Array(answers)))
}

async fn services(
    State(master): State<Master>,
    Path(service): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let records = master.dns_records().await?;
    let service = fully_qualified(&service);
    let mut answers = Vec::new();
    for data in records.at(&service).into_iter().flatten() {
        let RecordData::Srv { port, target, .. } = data else { continue };
        for ip in addresses(&records, target) {
            answers.push(json!({
                "service": service,
                "host": target,
                "ip": ip,
                "port": port.to_string(),
            }));
        }
    }
    Ok(Json(Value::Array(answers)))
}
