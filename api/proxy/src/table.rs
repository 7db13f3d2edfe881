//! The routing table: a pure function of one answer of `GET /corral/v1/services` and the
//! proxy's flags. No IO, so every rule below is unit-tested with exact tables.
//!
//! Rules (marathon-lb's labels, per service port `n` of an app):
//! - An app is served when `HAPROXY_GROUP` (a comma list) names one of `--group`, or
//!   `--group` contains `*`; `HAPROXY_{n}_GROUP` overrides the app's groups for port `n`.
//! - `HAPROXY_{n}_ENABLED`: `false` leaves port `n` out; `true` or absent serves it.
//! - Every served port listens on its service port: `HAPROXY_{n}_MODE` `tcp` copies bytes,
//!   `http` proxies request by request. The default is `http` when the port has a
//!   `VHOST` or a `PATH`, else `tcp`; the mode is the service port's only, the shared HTTP
//!   listener always speaks HTTP.
//! - `HAPROXY_{n}_VHOST` (comma list of host names) and `HAPROXY_{n}_PATH` (a prefix
//!   starting with `/`) also route the port on the shared HTTP listener (`--http-listen`).
//! - `HAPROXY_{n}_BALANCE`: `roundrobin` (default) or `leastconn`.
//! - Backends are the instances that are `ready` and not `draining`, at `ip:ports[n]`.
//! - A `draining` instance (being killed) takes no new connections; an open L4 connection
//!   to it goes on for the instance's `killGraceSeconds` (the app's
//!   `taskKillGracePeriodSeconds`, or the kill's own grace), the time the agent gives it
//!   between SIGTERM and SIGKILL. An instance without one, and one that left for another
//!   reason (unhealthy, gone), gets `--drain-grace`.
//! - A label that does not parse leaves out only the port it names (or, for the app-wide
//!   `HAPROXY_GROUP`, the app) and says why under `errors[appId]`; every other app and port
//!   is routed as usual. Apps of other groups are not looked at, so their labels never show
//!   as errors here. Labels for marathon-lb's templates are ignored.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

/// One answer of `GET /corral/v1/services`: only the fields the proxy reads.
#[derive(Clone, Debug, Deserialize)]
pub struct CatalogAnswer {
    pub index: u64,
    pub services: Vec<CatalogService>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogService {
    pub id: String,
    pub service_ports: Vec<u16>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub instances: Vec<CatalogInstance>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogInstance {
    pub task_id: String,
    pub ip: Option<IpAddr>,
    pub ports: Vec<CatalogPort>,
    pub ready: bool,
    pub draining: bool,
    /// Absent from catalogs of masters older than the field, as `null` is.
    #[serde(default)]
    pub kill_grace_seconds: Option<f64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct CatalogPort {
    pub number: u16,
}

/// `--group`: the groups this proxy serves; `*` serves every app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Groups(Vec<String>);

impl Groups {
    pub fn parse(text: &str) -> Result<Groups, String> {
        let groups = comma_list(text);
        if groups.is_empty() {
            return Err(format!("'{text}' names no group"));
        }
        Ok(Groups(groups))
    }

    fn admit(&self, app_groups: &[String]) -> bool {
        self.0.iter().any(|group| group == "*" || app_groups.contains(group))
    }

    fn serves_everything(&self) -> bool {
        self.0.iter().any(|group| group == "*")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Tcp,
    Http,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Balance {
    RoundRobin,
    LeastConn,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    pub task_id: String,
    pub addr: SocketAddr,
}

/// Where one app port's traffic goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pool {
    pub app_id: String,
    /// The index `n` of the port in the app's ports.
    pub port_index: usize,
    pub balance: Balance,
    pub backends: Vec<Backend>,
    /// Instances being killed: they take nothing new, open connections to them get a grace.
    pub draining: Vec<Draining>,
}

/// An instance of a pool being killed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Draining {
    pub task_id: String,
    pub addr: SocketAddr,
    /// Its kill grace; `None` when the catalog gives none and `--drain-grace` applies.
    #[serde(rename = "killGraceSeconds", serialize_with = "seconds")]
    pub kill_grace: Option<Duration>,
}

fn seconds<S: Serializer>(duration: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    duration.map(|duration| duration.as_secs_f64()).serialize(serializer)
}

/// A service port and what listens on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortRoute {
    pub mode: Mode,
    pub pool: Pool,
}

/// A virtual host and path prefix on the shared HTTP listener.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    /// Lowercase host names without ports; empty matches every host.
    pub hosts: Vec<String>,
    pub path_prefix: String,
    pub pool: Pool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    /// The catalog index this table was computed from.
    pub index: u64,
    pub ports: BTreeMap<u16, PortRoute>,
    pub http: Vec<HttpRoute>,
    /// Per app, why some of it is not routed.
    pub errors: BTreeMap<String, Vec<String>>,
}

impl Table {
    pub fn build(catalog: &CatalogAnswer, groups: &Groups) -> Table {
        let mut table = Table { index: catalog.index, ..Table::default() };
        let mut services: Vec<&CatalogService> = catalog.services.iter().collect();
        services.sort_by(|a, b| a.id.cmp(&b.id));
        for service in services {
            let mut errors = Vec::new();
            table.add_service(service, groups, &mut errors);
            if !errors.is_empty() {
                table.errors.insert(service.id.clone(), errors);
            }
        }
        table
    }

    fn add_service(&mut self, service: &CatalogService, groups: &Groups, errors: &mut Vec<String>) {
        // Apps of other groups are another proxy's: their labels are not this one's concern.
        let admitted = service.labels.iter().any(|(key, value)| {
            let group_label =
                key == "HAPROXY_GROUP" || port_label(key).is_some_and(|(_, name)| name == "GROUP");
            group_label && groups.admit(&comma_list(value))
        });
        if !admitted && !groups.serves_everything() {
            return;
        }
        let (labels, problems) = AppLabels::parse(service);
        errors.extend(problems);
        let graces = kill_graces(service, errors);
        for (n, &service_port) in service.service_ports.iter().enumerate() {
            let port = &labels.ports[n];
            let app_groups = port.groups.as_ref().unwrap_or(&labels.groups);
            if !groups.admit(app_groups) || !port.enabled {
                continue;
            }
            let pool = Pool {
                app_id: service.id.clone(),
                port_index: n,
                balance: port.balance,
                backends: backends(service, n),
                draining: draining(service, &graces, n),
            };
            if service_port == 0 {
                errors.push(format!("port {n} has no service port to listen on"));
            } else if let Some(taken) = self.ports.get(&service_port) {
                errors.push(format!(
                    "service port {service_port} is already routed to {}",
                    taken.pool.app_id
                ));
            } else {
                self.ports.insert(service_port, PortRoute { mode: port.mode, pool: pool.clone() });
            }
            if port.hosts.is_empty() && port.path_prefix.is_none() {
                continue;
            }
            let route = HttpRoute {
                hosts: port.hosts.clone(),
                path_prefix: port.path_prefix.clone().unwrap_or_else(|| "/".to_owned()),
                pool,
            };
            if let Some(taken) = self.http.iter().find(|other| overlaps(other, &route)) {
                errors.push(format!(
                    "HAPROXY_{n}_VHOST/PATH: {} {} is already routed to {}",
                    describe_hosts(&route.hosts),
                    route.path_prefix,
                    taken.pool.app_id
                ));
                continue;
            }
            self.http.push(route);
        }
    }

    /// How long an open connection to `addr` through service port `port` may go on once
    /// `addr` is no longer among the port's backends: the kill grace of the instance being
    /// killed there when the catalog gives one, else `fallback` (an instance without one, or
    /// one that went unhealthy or away rather than being killed).
    pub fn drain_grace(&self, port: u16, addr: SocketAddr, fallback: Duration) -> Duration {
        self.ports
            .get(&port)
            .and_then(|route| route.pool.draining.iter().find(|d| d.addr == addr))
            .and_then(|draining| draining.kill_grace)
            .unwrap_or(fallback)
    }

    /// The route for a request on the shared HTTP listener: a route naming the host wins
    /// over one for every host, then the longest path prefix.
    pub fn route_http(&self, host: Option<&str>, path: &str) -> Option<&HttpRoute> {
        self.route_http_index(host, path).map(|at| &self.http[at])
    }

    /// Where in `http` the route for a request is; compares without allocating, as the
    /// proxy asks this for every request.
    pub fn route_http_index(&self, host: Option<&str>, path: &str) -> Option<usize> {
        let host = host.map(host_name);
        self.http
            .iter()
            .enumerate()
            .filter(|(_, route)| {
                route.hosts.is_empty()
                    || host.is_some_and(|host| {
                        route.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
                    })
            })
            .filter(|(_, route)| path.starts_with(&route.path_prefix))
            .max_by_key(|(_, route)| (!route.hosts.is_empty(), route.path_prefix.len()))
            .map(|(at, _)| at)
    }
}

/// `Host` without its port and trailing dots, in its own case.
fn host_name(host: &str) -> &str {
    let without_port = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') && port.chars().all(|c| c.is_ascii_digit()) => {
            name
        }
        _ => host,
    };
    without_port.trim_end_matches('.')
}

/// `Host` without its port, lowercase.
fn normalize_host(host: &str) -> String {
    host_name(host).to_ascii_lowercase()
}

fn describe_hosts(hosts: &[String]) -> String {
    if hosts.is_empty() {
        return "any host".to_owned();
    }
    hosts.join(",")
}

/// Two routes that would answer the same request: a shared host (or both for every host)
/// and the same path prefix.
fn overlaps(a: &HttpRoute, b: &HttpRoute) -> bool {
    let same_hosts = (a.hosts.is_empty() && b.hosts.is_empty())
        || a.hosts.iter().any(|host| b.hosts.contains(host));
    same_hosts && a.path_prefix == b.path_prefix
}

fn backends(service: &CatalogService, n: usize) -> Vec<Backend> {
    service
        .instances
        .iter()
        .filter(|instance| instance.ready && !instance.draining)
        .filter_map(|instance| {
            let port = instance.ports.get(n)?;
            Some(Backend {
                task_id: instance.task_id.clone(),
                addr: SocketAddr::new(instance.ip?, port.number),
            })
        })
        .collect()
}

/// Each instance's kill grace, in instance order; a value that is no duration is reported
/// and leaves that instance to `--drain-grace`.
fn kill_graces(service: &CatalogService, errors: &mut Vec<String>) -> Vec<Option<Duration>> {
    service
        .instances
        .iter()
        .map(|instance| {
            let seconds = instance.kill_grace_seconds?;
            match Duration::try_from_secs_f64(seconds) {
                Ok(grace) => Some(grace),
                Err(error) => {
                    errors.push(format!(
                        "instance {}: killGraceSeconds {seconds} is no duration ({error}); --drain-grace applies",
                        instance.task_id
                    ));
                    None
                }
            }
        })
        .collect()
}

/// The instances being killed, at `ip:ports[n]`, with their kill grace.
fn draining(service: &CatalogService, graces: &[Option<Duration>], n: usize) -> Vec<Draining> {
    service
        .instances
        .iter()
        .zip(graces)
        .filter(|(instance, _)| instance.draining)
        .filter_map(|(instance, grace)| {
            let port = instance.ports.get(n)?;
            Some(Draining {
                task_id: instance.task_id.clone(),
                addr: SocketAddr::new(instance.ip?, port.number),
                kill_grace: *grace,
            })
        })
        .collect()
}

fn comma_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|part| !part.is_empty()).map(str::to_owned).collect()
}

/// An app's `HAPROXY_*` labels, parsed.
struct AppLabels {
    groups: Vec<String>,
    ports: Vec<PortLabels>,
}

struct PortLabels {
    groups: Option<Vec<String>>,
    enabled: bool,
    mode: Mode,
    balance: Balance,
    hosts: Vec<String>,
    path_prefix: Option<String>,
}

impl AppLabels {
    /// The labels, with every problem found (each naming its label); a port with a
    /// problem comes back disabled.
    fn parse(service: &CatalogService) -> (AppLabels, Vec<String>) {
        let labels = &service.labels;
        let groups = labels.get("HAPROXY_GROUP").map(|text| comma_list(text)).unwrap_or_default();
        let mut problems = Vec::new();
        for key in labels.keys() {
            let Some((n, _)) = port_label(key) else { continue };
            if n >= service.service_ports.len() {
                problems.push(format!(
                    "{key}: the app has {} service port(s), so there is no port {n}",
                    service.service_ports.len()
                ));
            }
        }
        let ports = (0..service.service_ports.len())
            .map(|n| {
                PortLabels::parse(labels, n).unwrap_or_else(|problem| {
                    problems.push(problem);
                    PortLabels::disabled()
                })
            })
            .collect();
        (AppLabels { groups, ports }, problems)
    }
}

/// `HAPROXY_{n}_{NAME}` as `(n, NAME)`.
fn port_label(key: &str) -> Option<(usize, &str)> {
    let rest = key.strip_prefix("HAPROXY_")?;
    let (number, name) = rest.split_once('_')?;
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((number.parse().ok()?, name))
}

impl PortLabels {
    fn disabled() -> PortLabels {
        PortLabels {
            groups: None,
            enabled: false,
            mode: Mode::Tcp,
            balance: Balance::RoundRobin,
            hosts: Vec::new(),
            path_prefix: None,
        }
    }

    fn parse(labels: &BTreeMap<String, String>, n: usize) -> Result<PortLabels, String> {
        let get = |name: &str| {
            let key = format!("HAPROXY_{n}_{name}");
            labels.get(&key).map(|value| (key, value.trim()))
        };
        let enabled = match get("ENABLED") {
            None => true,
            Some((_, value)) if value.eq_ignore_ascii_case("true") => true,
            Some((_, value)) if value.eq_ignore_ascii_case("false") => false,
            Some((key, value)) => return Err(format!("{key}: '{value}' is not true or false")),
        };
        let hosts: Vec<String> = match get("VHOST") {
            None => Vec::new(),
            Some((key, value)) => {
                let hosts: Vec<String> =
                    comma_list(value).iter().map(|h| normalize_host(h)).collect();
                if let Some(bad) = hosts.iter().find(|host| !valid_host(host)) {
                    return Err(format!("{key}: '{bad}' is not a host name"));
                }
                hosts
            }
        };
        let path_prefix = match get("PATH") {
            None => None,
            Some((key, value)) if !value.starts_with('/') => {
                return Err(format!("{key}: '{value}' does not start with /"))
            }
            Some((_, value)) => Some(value.to_owned()),
        };
        let routed_by_http = !hosts.is_empty() || path_prefix.is_some();
        let mode = match get("MODE") {
            None if routed_by_http => Mode::Http,
            None => Mode::Tcp,
            Some((_, "http")) => Mode::Http,
            Some((_, "tcp")) => Mode::Tcp,
            Some((key, value)) => return Err(format!("{key}: '{value}' is not tcp or http")),
        };
        let balance = match get("BALANCE") {
            None | Some((_, "roundrobin")) => Balance::RoundRobin,
            Some((_, "leastconn")) => Balance::LeastConn,
            Some((key, value)) => {
                return Err(format!("{key}: '{value}' is not roundrobin or leastconn"))
            }
        };
        let groups = get("GROUP").map(|(_, value)| comma_list(value));
        Ok(PortLabels { groups, enabled, mode, balance, hosts, path_prefix })
    }
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog(services: serde_json::Value) -> CatalogAnswer {
        serde_json::from_value(json!({"index": 42, "services": services}))
            .expect("the test catalog has the catalog's shape")
    }

    fn instance(
        task: &str,
        ip: &str,
        ports: &[u16],
        ready: bool,
        draining: bool,
    ) -> serde_json::Value {
        let ports: Vec<_> =
            ports.iter().map(|p| json!({"number": p, "name": null, "protocol": "tcp"})).collect();
        json!({"taskId": task, "agentId": "a1", "host": "h", "ip": ip, "ports": ports,
               "state": "TASK_RUNNING", "healthy": true, "ready": ready, "draining": draining,
               "version": "2026-01-01T00:00:00.000Z"})
    }

    fn service(
        id: &str,
        ports: &[u16],
        labels: serde_json::Value,
        instances: Vec<serde_json::Value>,
    ) -> serde_json::Value {
        json!({"id": id, "version": "v", "configVersion": "v", "servicePorts": ports,
               "labels": labels, "healthChecked": true, "instances": instances})
    }

    fn external() -> Groups {
        Groups::parse("external").expect("a group")
    }

    fn table_json(table: &Table) -> serde_json::Value {
        serde_json::to_value(table).expect("a table serializes")
    }

    #[test]
    fn tcp_port_gets_ready_instances_only() {
        let answer = catalog(json!([service(
            "/web",
            &[10000],
            json!({"HAPROXY_GROUP": "external"}),
            vec![
                instance("t1", "10.0.0.1", &[31000], true, false),
                instance("t2", "10.0.0.2", &[31001], false, false),
                instance("t3", "10.0.0.3", &[31002], true, true),
            ]
        )]));
        assert_eq!(
            table_json(&Table::build(&answer, &external())),
            json!({
                "index": 42,
                "ports": {"10000": {"mode": "tcp", "pool": {"appId": "/web", "portIndex": 0,
                    "balance": "roundrobin",
                    "backends": [{"taskId": "t1", "addr": "10.0.0.1:31000"}],
                    "draining": [{"taskId": "t3", "addr": "10.0.0.3:31002",
                        "killGraceSeconds": null}]}}},
                "http": [],
                "errors": {}
            })
        );
    }

    #[test]
    fn a_killed_instance_drains_for_its_kill_grace_and_others_for_the_fallback() {
        let with_grace = |mut instance: serde_json::Value, seconds: serde_json::Value| {
            instance["killGraceSeconds"] = seconds;
            instance
        };
        let answer = catalog(json!([service(
            "/web",
            &[10000, 10001],
            json!({"HAPROXY_GROUP": "external"}),
            vec![
                with_grace(instance("t1", "10.0.0.1", &[31000, 31001], true, false), json!(30)),
                with_grace(instance("t2", "10.0.0.2", &[31002, 31003], false, true), json!(7.5)),
                instance("t3", "10.0.0.3", &[31004, 31005], false, true),
                with_grace(instance("t4", "10.0.0.4", &[31006, 31007], false, true), json!(-1)),
                with_grace(instance("t5", "10.0.0.5", &[31008, 31009], false, false), json!(9)),
            ]
        )]));
        let table = Table::build(&answer, &external());
        let fallback = Duration::from_secs(10);
        let grace = |port: u16, addr: &str| {
            table.drain_grace(port, addr.parse().expect("an address"), fallback)
        };
        // Killed with a grace: that grace, on every port of the instance.
        assert_eq!(grace(10000, "10.0.0.2:31002"), Duration::from_millis(7500));
        assert_eq!(grace(10001, "10.0.0.2:31003"), Duration::from_millis(7500));
        // Killed without one, or with one that is no duration: the fallback.
        assert_eq!(grace(10000, "10.0.0.3:31004"), fallback);
        assert_eq!(grace(10000, "10.0.0.4:31006"), fallback);
        // Unhealthy, not killed: the fallback, whatever its app's grace.
        assert_eq!(grace(10000, "10.0.0.5:31008"), fallback);
        // Gone from the catalog, or asked on another port: the fallback.
        assert_eq!(grace(10000, "10.0.0.9:31000"), fallback);
        assert_eq!(grace(10001, "10.0.0.2:31002"), fallback);
        assert_eq!(
            table_json(&table)["errors"],
            json!({"/web": [
                "instance t4: killGraceSeconds -1 is no duration (cannot convert float seconds to Duration: value is negative); --drain-grace applies"
            ]})
        );
        assert_eq!(
            table_json(&table)["ports"]["10000"]["pool"]["draining"],
            json!([
                {"taskId": "t2", "addr": "10.0.0.2:31002", "killGraceSeconds": 7.5},
                {"taskId": "t3", "addr": "10.0.0.3:31004", "killGraceSeconds": null},
                {"taskId": "t4", "addr": "10.0.0.4:31006", "killGraceSeconds": null},
            ])
        );
    }

    #[test]
    fn only_apps_in_the_group_are_served_and_star_serves_all() {
        let answer = catalog(json!([
            service("/a", &[10000], json!({"HAPROXY_GROUP": "internal,external"}), vec![]),
            service("/b", &[10001], json!({"HAPROXY_GROUP": "internal"}), vec![]),
            service("/c", &[10002], json!({}), vec![]),
            service(
                "/d",
                &[10003, 10004],
                json!({"HAPROXY_GROUP": "internal", "HAPROXY_1_GROUP": "external"}),
                vec![]
            ),
        ]));
        let ports = |groups: &str| -> Vec<u16> {
            let table = Table::build(&answer, &Groups::parse(groups).expect("groups"));
            table.ports.keys().copied().collect()
        };
        assert_eq!(ports("external"), vec![10000, 10004]);
        assert_eq!(ports("internal"), vec![10000, 10001, 10003]);
        assert_eq!(ports("*"), vec![10000, 10001, 10002, 10003, 10004]);
        assert_eq!(Groups::parse(" , "), Err("' , ' names no group".to_owned()));
    }

    #[test]
    fn vhost_and_path_route_http_and_default_to_http_mode() {
        let answer = catalog(json!([
            service(
                "/web",
                &[10000],
                json!({"HAPROXY_GROUP": "external",
                "HAPROXY_0_VHOST": "Web.Example.com, www.example.com", "HAPROXY_0_BALANCE": "leastconn"}),
                vec![instance("t1", "10.0.0.1", &[31000], true, false)]
            ),
            service(
                "/api",
                &[10001],
                json!({"HAPROXY_GROUP": "external",
                "HAPROXY_0_VHOST": "web.example.com", "HAPROXY_0_PATH": "/api"}),
                vec![instance("t2", "10.0.0.2", &[31001], true, false)]
            ),
            service(
                "/any",
                &[10002],
                json!({"HAPROXY_GROUP": "external", "HAPROXY_0_PATH": "/static"}),
                vec![]
            ),
        ]));
        let table = Table::build(&answer, &external());
        assert_eq!(
            table_json(&table)["http"],
            json!([
                {"hosts": [], "pathPrefix": "/static", "pool": {"appId": "/any", "portIndex": 0,
                    "balance": "roundrobin", "backends": [], "draining": []}},
                {"hosts": ["web.example.com"], "pathPrefix": "/api", "pool": {"appId": "/api",
                    "portIndex": 0, "balance": "roundrobin",
                    "backends": [{"taskId": "t2", "addr": "10.0.0.2:31001"}], "draining": []}},
                {"hosts": ["web.example.com", "www.example.com"], "pathPrefix": "/", "pool": {
                    "appId": "/web", "portIndex": 0, "balance": "leastconn",
                    "backends": [{"taskId": "t1", "addr": "10.0.0.1:31000"}], "draining": []}},
            ])
        );
        assert_eq!(table.ports[&10000].mode, Mode::Http);
        let app = |host: Option<&str>, path: &str| {
            table.route_http(host, path).map(|route| route.pool.app_id.as_str())
        };
        assert_eq!(app(Some("web.example.com"), "/"), Some("/web"));
        assert_eq!(app(Some("WEB.example.com:8080"), "/api/v1"), Some("/api"));
        assert_eq!(app(Some("www.example.com"), "/api/v1"), Some("/web"));
        assert_eq!(app(Some("web.example.com"), "/static/x"), Some("/web"));
        assert_eq!(app(Some("other.example.com"), "/static/x"), Some("/any"));
        assert_eq!(app(None, "/static"), Some("/any"));
        assert_eq!(app(Some("other.example.com"), "/"), None);
    }

    #[test]
    fn a_bad_label_leaves_out_only_its_port_and_says_why() {
        let answer = catalog(json!([
            service(
                "/bad",
                &[10000, 10001],
                json!({"HAPROXY_GROUP": "external",
                "HAPROXY_0_MODE": "udp", "HAPROXY_1_BALANCE": "source", "HAPROXY_2_VHOST": "x.com"}),
                vec![instance("t1", "10.0.0.1", &[31000, 31001], true, false)]
            ),
            service(
                "/half",
                &[10002, 10003],
                json!({"HAPROXY_GROUP": "external",
                "HAPROXY_0_PATH": "api", "HAPROXY_1_ENABLED": "yes please"}),
                vec![]
            ),
            service(
                "/mixed",
                &[10004, 10005],
                json!({"HAPROXY_GROUP": "external",
                "HAPROXY_0_VHOST": "bad_host.com", "HAPROXY_1_MODE": "tcp",
                "HAPROXY_0_BACKEND_HTTP_OPTIONS": "ignored template"}),
                vec![]
            ),
            service(
                "/tcpvhost",
                &[10006],
                json!({"HAPROXY_GROUP": "external",
                "HAPROXY_0_VHOST": "a.com", "HAPROXY_0_MODE": "tcp"}),
                vec![]
            ),
            service("/good", &[10007], json!({"HAPROXY_GROUP": "external"}), vec![]),
        ]));
        let table = Table::build(&answer, &external());
        assert_eq!(
            table_json(&table)["errors"],
            json!({
                "/bad": [
                    "HAPROXY_2_VHOST: the app has 2 service port(s), so there is no port 2",
                    "HAPROXY_0_MODE: 'udp' is not tcp or http",
                    "HAPROXY_1_BALANCE: 'source' is not roundrobin or leastconn",
                ],
                "/half": [
                    "HAPROXY_0_PATH: 'api' does not start with /",
                    "HAPROXY_1_ENABLED: 'yes please' is not true or false",
                ],
                "/mixed": ["HAPROXY_0_VHOST: 'bad_host.com' is not a host name"],
            })
        );
        assert_eq!(table.ports.keys().copied().collect::<Vec<_>>(), vec![10005, 10006, 10007]);
        assert_eq!(table.ports[&10006].mode, Mode::Tcp);
        assert_eq!(
            table.route_http(Some("a.com"), "/").map(|r| r.pool.app_id.as_str()),
            Some("/tcpvhost")
        );
    }

    #[test]
    fn disabled_ports_and_clashes_are_left_out() {
        let answer = catalog(json!([
            service(
                "/a",
                &[10000, 10001],
                json!({"HAPROXY_GROUP": "external",
                "HAPROXY_1_ENABLED": "false", "HAPROXY_0_VHOST": "a.com"}),
                vec![]
            ),
            service(
                "/b",
                &[10000, 10002],
                json!({"HAPROXY_GROUP": "external",
                "HAPROXY_1_VHOST": "a.com"}),
                vec![]
            ),
            service("/c", &[0], json!({"HAPROXY_GROUP": "external"}), vec![]),
        ]));
        let table = Table::build(&answer, &external());
        assert_eq!(table.ports.keys().copied().collect::<Vec<_>>(), vec![10000, 10002]);
        assert_eq!(table.http.len(), 1);
        assert_eq!(
            table_json(&table)["errors"],
            json!({
                "/b": [
                    "service port 10000 is already routed to /a",
                    "HAPROXY_1_VHOST/PATH: a.com / is already routed to /a",
                ],
                "/c": ["port 0 has no service port to listen on"],
            })
        );
    }

    #[test]
    fn instances_without_an_address_or_the_port_are_skipped() {
        let mut no_ip = instance("t1", "10.0.0.1", &[31000, 31001], true, false);
        no_ip["ip"] = serde_json::Value::Null;
        let answer = catalog(json!([service(
            "/two",
            &[10000, 10001],
            json!({"HAPROXY_GROUP": "external"}),
            vec![no_ip, instance("t2", "10.0.0.2", &[31002], true, false)]
        )]));
        let table = Table::build(&answer, &external());
        assert_eq!(
            table.ports[&10000].pool.backends,
            vec![Backend {
                task_id: "t2".to_owned(),
                addr: "10.0.0.2:31002".parse().expect("an address")
            }]
        );
        assert!(table.ports[&10001].pool.backends.is_empty());
    }
}
