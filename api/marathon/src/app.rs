//! A Marathon 1.x app definition (`POST /v2/apps`, `GET /v2/apps/{id}`).
//!
//! Unknown fields are ignored: Marathon rejects them only in its strict mode, and clients
//! written against newer Marathons send fields this version does not know.

use std::collections::BTreeMap;
use std::time::Duration;

use corral_state::model::{
    self, AppSpec, Backoff, CommandInfo, ContainerInfo, DiscoveryInfo, DiscoveryPort,
    DiscoveryVisibility, KillPolicy, Label, ServiceApp, TaskInfo, UnreachablePolicy, UpgradeBounds,
};
use corral_state::{AgentId, Ranges, Resource, Resources, Role, Scalar, TaskId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDefinition {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default = "default_cpus")]
    pub cpus: f64,
    #[serde(default = "default_mem")]
    pub mem: f64,
    #[serde(default)]
    pub disk: f64,
    #[serde(default)]
    pub gpus: i64,
    #[serde(default = "default_instances")]
    pub instances: i64,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// `None` only before `normalize`: Marathon gives a host-networked app one dynamic port
    /// when it names none, and a bridged app none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_definitions: Option<Vec<PortDefinition>>,
    #[serde(default)]
    pub require_ports: bool,
    #[serde(default)]
    pub constraints: Vec<Constraint>,
    #[serde(default)]
    pub health_checks: Vec<HealthCheck>,
    #[serde(default)]
    pub upgrade_strategy: UpgradeStrategy,
    #[serde(default = "default_backoff_seconds")]
    pub backoff_seconds: f64,
    #[serde(default = "default_backoff_factor")]
    pub backoff_factor: f64,
    /// Marathon 1.4's default of 300 s; Marathon 1.5 and later raised it to 3600 s.
    #[serde(default = "default_max_launch_delay_seconds")]
    pub max_launch_delay_seconds: f64,
    #[serde(default)]
    pub kill_selection: KillSelection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_kill_grace_period_seconds: Option<f64>,
    #[serde(default)]
    pub unreachable_strategy: UnreachableStrategy,
    #[serde(default)]
    pub accepted_resource_roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Output only: whatever a client sends is dropped by `parse_app`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The longest `taskKillGracePeriodSeconds`: as nanoseconds it still fits Mesos's
/// `DurationInfo` (an int64), which carries it to agents and frameworks.
pub const MAX_KILL_GRACE_PERIOD_SECONDS: f64 = 9_223_372_036.0;

fn default_cpus() -> f64 {
    1.0
}

fn default_mem() -> f64 {
    128.0
}

fn default_instances() -> i64 {
    1
}

fn default_backoff_seconds() -> f64 {
    1.0
}

fn default_backoff_factor() -> f64 {
    1.15
}

fn default_max_launch_delay_seconds() -> f64 {
    300.0
}

fn default_protocol() -> String {
    "tcp".to_owned()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ContainerKind {
    Mesos,
    Docker,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DockerNetwork {
    Bridge,
    Host,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(rename = "type", default = "default_container_kind")]
    pub kind: ContainerKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<Docker>,
    /// Marathon 1.5 moved the mappings here from `docker.portMappings`; both are read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
}

fn default_container_kind() -> ContainerKind {
    ContainerKind::Docker
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Docker {
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<DockerNetwork>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub force_pull_image: bool,
    #[serde(default)]
    pub parameters: Vec<DockerParameter>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerParameter {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    #[serde(default)]
    pub container_port: i64,
    /// `None` means no host port at all; `Some(0)` asks for one from the offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i64>,
    #[serde(default)]
    pub service_port: i64,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortDefinition {
    /// The service port; 0 asks for one from the service port range.
    #[serde(default)]
    pub port: i64,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `[field, operator, value?]`, kept as sent so validation can point at a malformed one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Constraint(pub Vec<String>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConstraintOperator {
    Unique,
    Cluster,
    GroupBy,
    Like,
    Unlike,
    MaxPer,
    Is,
}

impl ConstraintOperator {
    pub fn from_marathon_str(text: &str) -> Option<ConstraintOperator> {
        let operator = match text {
            "UNIQUE" => ConstraintOperator::Unique,
            "CLUSTER" => ConstraintOperator::Cluster,
            "GROUP_BY" => ConstraintOperator::GroupBy,
            "LIKE" => ConstraintOperator::Like,
            "UNLIKE" => ConstraintOperator::Unlike,
            "MAX_PER" => ConstraintOperator::MaxPer,
            "IS" => ConstraintOperator::Is,
            _ => return None,
        };
        Some(operator)
    }
}

impl Constraint {
    pub fn field(&self) -> Option<&str> {
        self.0.first().map(String::as_str)
    }

    pub fn operator(&self) -> Option<ConstraintOperator> {
        self.0.get(1).and_then(|text| ConstraintOperator::from_marathon_str(text))
    }

    pub fn value(&self) -> Option<&str> {
        self.0.get(2).map(String::as_str)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthCheckProtocol {
    Http,
    Https,
    Tcp,
    Command,
    MesosHttp,
    MesosHttps,
    MesosTcp,
}

impl HealthCheckProtocol {
    fn uses_port(self) -> bool {
        self != HealthCheckProtocol::Command
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckCommand {
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    #[serde(default = "default_health_protocol")]
    pub protocol: HealthCheckProtocol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_index: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<HealthCheckCommand>,
    #[serde(default = "default_grace_period_seconds")]
    pub grace_period_seconds: i64,
    #[serde(default = "default_interval_seconds")]
    pub interval_seconds: i64,
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: i64,
    #[serde(default = "default_max_consecutive_failures")]
    pub max_consecutive_failures: i64,
    #[serde(default = "default_delay_seconds")]
    pub delay_seconds: i64,
}

fn default_health_protocol() -> HealthCheckProtocol {
    HealthCheckProtocol::Http
}

fn default_grace_period_seconds() -> i64 {
    300
}

fn default_interval_seconds() -> i64 {
    60
}

fn default_timeout_seconds() -> i64 {
    20
}

fn default_max_consecutive_failures() -> i64 {
    3
}

fn default_delay_seconds() -> i64 {
    15
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStrategy {
    #[serde(default = "default_capacity")]
    pub minimum_health_capacity: f64,
    #[serde(default = "default_capacity")]
    pub maximum_over_capacity: f64,
}

fn default_capacity() -> f64 {
    1.0
}

impl Default for UpgradeStrategy {
    fn default() -> UpgradeStrategy {
        UpgradeStrategy { minimum_health_capacity: 1.0, maximum_over_capacity: 1.0 }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KillSelection {
    #[default]
    YoungestFirst,
    OldestFirst,
}

/// Either `"disabled"` or the two timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UnreachableStrategy {
    Disabled(UnreachableDisabled),
    #[serde(rename_all = "camelCase")]
    Enabled {
        #[serde(default)]
        inactive_after_seconds: f64,
        #[serde(default)]
        expunge_after_seconds: f64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnreachableDisabled {
    Disabled,
}

impl Default for UnreachableStrategy {
    /// Marathon's: a replacement after 5 minutes, expunged after 10.
    fn default() -> UnreachableStrategy {
        UnreachableStrategy::Enabled { inactive_after_seconds: 300.0, expunge_after_seconds: 600.0 }
    }
}

/// Marathon's 422 body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationFailure {
    pub message: String,
    pub details: Vec<ValidationDetail>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationDetail {
    pub path: String,
    pub errors: Vec<String>,
}

impl ValidationFailure {
    /// The errors at `path`, for tests and logs.
    pub fn errors_at(&self, path: &str) -> &[String] {
        self.details
            .iter()
            .find(|detail| detail.path == path)
            .map_or(&[][..], |detail| detail.errors.as_slice())
    }
}

/// Collects errors per JSON pointer, in the order first seen.
#[derive(Default)]
struct Violations(Vec<ValidationDetail>);

impl Violations {
    fn add(&mut self, path: impl Into<String>, error: impl Into<String>) {
        let path = path.into();
        let error = error.into();
        if let Some(detail) = self.0.iter_mut().find(|detail| detail.path == path) {
            detail.errors.push(error);
            return;
        }
        self.0.push(ValidationDetail { path, errors: vec![error] });
    }

    fn into_result(self) -> Result<(), ValidationFailure> {
        if self.0.is_empty() {
            return Ok(());
        }
        Err(ValidationFailure { message: "Object is not valid".to_owned(), details: self.0 })
    }
}

/// Parses, normalizes and validates a request body, as `POST /v2/apps` does.
pub fn parse_app(body: &[u8]) -> Result<AppDefinition, ValidationFailure> {
    let invalid = |path: String, error: serde_json::Error| ValidationFailure {
        message: "Invalid JSON".to_owned(),
        details: vec![ValidationDetail { path, errors: vec![error.to_string()] }],
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let mut app: AppDefinition = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| invalid(json_pointer(error.path()), error.into_inner()))?;
    deserializer.end().map_err(|error| invalid("/".to_owned(), error))?;
    app.version = None;
    app.normalize();
    app.validate()?;
    Ok(app)
}

/// Where a value that does not fit the app's shape is, as a JSON pointer (`/` for the
/// document itself), so that a 422 names the field.
fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let pointer: String = path
        .iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(format!("/{index}")),
            Segment::Map { key } => Some(format!("/{}", key.replace('~', "~0").replace('/', "~1"))),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect();
    if pointer.is_empty() {
        return "/".to_owned();
    }
    pointer
}

/// Marathon's path segment rule: dot-separated labels of `[a-z0-9-]`, each starting and ending
/// with a letter or digit.
fn is_valid_segment(segment: &str) -> bool {
    segment.split('.').all(|label| {
        let bytes = label.as_bytes();
        let edge = |byte: &u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
        let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
            return false;
        };
        edge(first) && edge(last) && bytes.iter().all(|byte| edge(byte) || *byte == b'-')
    })
}

fn is_valid_port(port: i64) -> bool {
    (0..=65535).contains(&port)
}

impl AppDefinition {
    /// Fills what Marathon derives: an absolute id, the default port for host networking,
    /// dynamic host ports for bridged mappings, and `portIndex` 0 for health checks that name
    /// no port.
    pub fn normalize(&mut self) {
        let trimmed = self.id.trim_end_matches('/');
        self.id = if trimmed.starts_with('/') { trimmed.to_owned() } else { format!("/{trimmed}") };
        if self.port_definitions.is_none() {
            let default = PortDefinition {
                port: 0,
                protocol: default_protocol(),
                name: None,
                labels: BTreeMap::new(),
            };
            self.port_definitions =
                Some(if self.is_bridged() { Vec::new() } else { vec![default] });
        }
        // Marathon 1.x: a bridged mapping without a host port asks for a dynamic one.
        if self.is_bridged() {
            if let Some(container) = &mut self.container {
                let docker =
                    container.docker.iter_mut().flat_map(|docker| &mut docker.port_mappings);
                for mapping in container.port_mappings.iter_mut().chain(docker) {
                    mapping.host_port.get_or_insert(0);
                }
            }
        }
        for check in &mut self.health_checks {
            if check.protocol.uses_port() && check.port.is_none() && check.port_index.is_none() {
                check.port_index = Some(0);
            }
        }
    }

    /// What the state needs to know of this definition to enforce its rules. Call on a
    /// validated definition: its numbers are in range.
    pub fn spec(&self) -> AppSpec {
        let role = self.role.as_deref().and_then(|role| Role::parse(role).ok());
        AppSpec {
            instances: u32::try_from(self.instances.max(0)).unwrap_or(u32::MAX),
            role: role.unwrap_or_else(Role::default_role),
            health_checked: !self.health_checks.is_empty(),
            upgrade: UpgradeBounds {
                minimum_health_capacity_permille: permille(
                    self.upgrade_strategy.minimum_health_capacity,
                ),
                maximum_over_capacity_permille: permille(
                    self.upgrade_strategy.maximum_over_capacity,
                ),
            },
            backoff: Backoff {
                initial: validated_seconds(self.backoff_seconds),
                factor_permille: permille(self.backoff_factor),
                maximum: validated_seconds(self.max_launch_delay_seconds),
            },
            service_ports: self
                .requested_service_ports()
                .into_iter()
                .map(|port| u16::try_from(port).expect("validated ports are in 0..=65535"))
                .collect(),
            unreachable: match self.unreachable_strategy {
                UnreachableStrategy::Disabled(_) => UnreachablePolicy::Disabled,
                UnreachableStrategy::Enabled { inactive_after_seconds, expunge_after_seconds } => {
                    UnreachablePolicy::Enabled {
                        inactive_after: validated_seconds(inactive_after_seconds),
                        expunge_after: validated_seconds(expunge_after_seconds),
                    }
                }
            },
        }
    }

    /// The service port asked for at each port of a task: the mappings' `servicePort` when
    /// bridged, else the port definitions' `port`; 0 asks for one from the range.
    pub fn requested_service_ports(&self) -> Vec<i64> {
        if self.is_bridged() {
            return self.port_mappings().0.iter().map(|mapping| mapping.service_port).collect();
        }
        self.port_definitions().iter().map(|definition| definition.port).collect()
    }

    /// The definition with the service ports the state assigned in place of the ones asked
    /// for (0 among them), as Marathon shows and launches it.
    pub fn with_service_ports(mut self, assigned: &[u16]) -> AppDefinition {
        let bridged = self.is_bridged();
        if bridged {
            if let Some(container) = &mut self.container {
                let mappings = if container.port_mappings.is_empty() {
                    container.docker.as_mut().map(|docker| &mut docker.port_mappings)
                } else {
                    Some(&mut container.port_mappings)
                };
                for (mapping, &port) in mappings.into_iter().flatten().zip(assigned) {
                    mapping.service_port = i64::from(port);
                }
            }
            return self;
        }
        if let Some(definitions) = &mut self.port_definitions {
            for (definition, &port) in definitions.iter_mut().zip(assigned) {
                definition.port = i64::from(port);
            }
        }
        self
    }

    /// An update that names the service ports the app was assigned asks for what it already
    /// has, as a client that read the app and sends it back does: those ports are asked for
    /// as before (dynamically), so the update is not a configuration change.
    pub fn keep_assigned_ports(&mut self, current: &AppDefinition, assigned: &[u16]) {
        let before = current.requested_service_ports();
        let unchanged = |index: usize, port: i64| {
            before.get(index) == Some(&0)
                && assigned.get(index).is_some_and(|&held| i64::from(held) == port)
        };
        if self.is_bridged() {
            if let Some(container) = &mut self.container {
                let docker = container.docker.iter_mut().flat_map(|d| &mut d.port_mappings);
                let mappings: Vec<&mut PortMapping> = if container.port_mappings.is_empty() {
                    docker.collect()
                } else {
                    container.port_mappings.iter_mut().collect()
                };
                for (index, mapping) in mappings.into_iter().enumerate() {
                    if unchanged(index, mapping.service_port) {
                        mapping.service_port = 0;
                    }
                }
            }
            return;
        }
        if let Some(definitions) = &mut self.port_definitions {
            for (index, definition) in definitions.iter_mut().enumerate() {
                if unchanged(index, definition.port) {
                    definition.port = 0;
                }
            }
        }
    }

    /// Marathon's task name and DNS label for the app: its path reversed, `/a/b/c` → `c.b.a`.
    pub fn task_name(&self) -> String {
        let segments: Vec<&str> =
            self.id.split('/').filter(|segment| !segment.is_empty()).rev().collect();
        segments.join(".")
    }

    /// The definition as the log stores it: normalised JSON without `instances` (the state
    /// keeps that in the spec, so scaling is not a configuration change) or `version`.
    pub fn stored_definition(&self) -> String {
        let mut value = serde_json::to_value(self).expect(
            "an AppDefinition always renders to JSON: string-keyed maps and finite numbers only",
        );
        if let Some(object) = value.as_object_mut() {
            object.remove("instances");
            object.remove("version");
        }
        value.to_string()
    }

    /// Reads a stored definition back and gives it the instance count the state holds.
    pub fn from_stored(definition: &str, instances: u32) -> Result<AppDefinition, String> {
        let mut app: AppDefinition =
            serde_json::from_str(definition).map_err(|error| error.to_string())?;
        app.instances = i64::from(instances);
        Ok(app)
    }

    /// The app as it launches and shows: its stored definition with its assigned service
    /// ports.
    pub fn of_app(app: &ServiceApp) -> Result<AppDefinition, String> {
        let definition = AppDefinition::from_stored(&app.definition, app.spec.instances)?;
        Ok(definition.with_service_ports(&app.service_ports))
    }

    pub fn docker_image(&self) -> Option<&str> {
        let image = self.container.as_ref()?.docker.as_ref()?.image.as_str();
        if image.is_empty() {
            return None;
        }
        Some(image)
    }

    pub fn is_bridged(&self) -> bool {
        let network =
            self.container.as_ref().and_then(|c| c.docker.as_ref()).and_then(|d| d.network);
        network == Some(DockerNetwork::Bridge)
    }

    /// The port mappings wherever the client put them, with the JSON pointer of their list.
    pub fn port_mappings(&self) -> (&[PortMapping], &'static str) {
        let Some(container) = &self.container else {
            return (&[], "/container/portMappings");
        };
        if !container.port_mappings.is_empty() {
            return (&container.port_mappings, "/container/portMappings");
        }
        match &container.docker {
            Some(docker) => (&docker.port_mappings, "/container/docker/portMappings"),
            None => (&[], "/container/portMappings"),
        }
    }

    pub fn port_definitions(&self) -> &[PortDefinition] {
        self.port_definitions.as_deref().unwrap_or_default()
    }

    /// How many ports a task of this app has: mappings when bridged, definitions otherwise.
    fn port_count(&self) -> usize {
        if self.is_bridged() {
            return self.port_mappings().0.len();
        }
        self.port_definitions().len()
    }

    /// Marathon's rules, all errors at once.
    pub fn validate(&self) -> Result<(), ValidationFailure> {
        let mut violations = Violations::default();
        self.validate_id(&mut violations);
        self.validate_command(&mut violations);
        self.validate_resources(&mut violations);
        self.validate_ports(&mut violations);
        self.validate_constraints(&mut violations);
        self.validate_health_checks(&mut violations);
        self.validate_strategies(&mut violations);
        violations.into_result()
    }

    fn validate_id(&self, violations: &mut Violations) {
        if self.id.is_empty() || self.id == "/" {
            violations.add("/id", "must not be the root group");
            return;
        }
        let relative = self.id.strip_prefix('/').unwrap_or(&self.id);
        if !relative.split('/').all(is_valid_segment) {
            violations.add(
                "/id",
                "must be a path of segments of lowercase letters, digits, '-' and '.', \
                 each starting and ending with a letter or digit",
            );
        }
    }

    fn validate_command(&self, violations: &mut Violations) {
        if self.cmd.is_some() && self.args.is_some() {
            violations.add("/args", "must not be given together with cmd");
        }
        let has_command = self.cmd.as_deref().is_some_and(|cmd| !cmd.is_empty())
            || self.args.as_ref().is_some_and(|args| !args.is_empty());
        if !has_command && self.docker_image().is_none() {
            violations.add("/", "is required: cmd, args or container.docker.image");
        }
        let Some(container) = &self.container else {
            return;
        };
        if container.kind == ContainerKind::Docker && container.docker.is_none() {
            violations.add("/container/docker", "is required for a DOCKER container");
        }
        if let Some(docker) = &container.docker {
            if docker.image.is_empty() {
                violations.add("/container/docker/image", "must not be empty");
            }
        }
    }

    fn validate_resources(&self, violations: &mut Violations) {
        let scalars = [("/cpus", self.cpus), ("/mem", self.mem), ("/disk", self.disk)];
        for (path, value) in scalars {
            if !value.is_finite() || value < 0.0 {
                violations.add(path, "must be >= 0");
            }
        }
        if self.gpus < 0 {
            violations.add("/gpus", "must be >= 0");
        }
        if self.instances < 0 {
            violations.add("/instances", "must be >= 0");
        }
        if self
            .task_kill_grace_period_seconds
            .is_some_and(|seconds| !(seconds > 0.0 && seconds <= MAX_KILL_GRACE_PERIOD_SECONDS))
        {
            violations.add(
                "/taskKillGracePeriodSeconds",
                format!("must be > 0 and <= {MAX_KILL_GRACE_PERIOD_SECONDS}"),
            );
        }
    }

    fn validate_ports(&self, violations: &mut Violations) {
        for (index, definition) in self.port_definitions().iter().enumerate() {
            if !is_valid_port(definition.port) {
                violations.add(format!("/portDefinitions/{index}/port"), "must be in 0..=65535");
            }
        }
        let (mappings, base) = self.port_mappings();
        if self.is_bridged() {
            let named = mappings.iter().map(|m| (m.service_port, m.name.as_deref()));
            unique_ports(named, base, "servicePort", violations);
        } else {
            let named = self.port_definitions().iter().map(|d| (d.port, d.name.as_deref()));
            unique_ports(named, "/portDefinitions", "port", violations);
        }
        for (index, mapping) in mappings.iter().enumerate() {
            let fields = [
                ("containerPort", Some(mapping.container_port)),
                ("hostPort", mapping.host_port),
                ("servicePort", Some(mapping.service_port)),
            ];
            for (field, port) in fields {
                if port.is_some_and(|port| !is_valid_port(port)) {
                    violations.add(format!("{base}/{index}/{field}"), "must be in 0..=65535");
                }
            }
        }
        if !mappings.is_empty() && !self.is_bridged() {
            violations.add(base, "are only allowed with BRIDGE networking");
        }
    }

    fn validate_constraints(&self, violations: &mut Violations) {
        for (index, constraint) in self.constraints.iter().enumerate() {
            let path = format!("/constraints/{index}");
            if !(2..=3).contains(&constraint.0.len()) {
                violations.add(path, "must be [field, operator] or [field, operator, value]");
                continue;
            }
            if constraint.field().is_some_and(str::is_empty) {
                violations.add(path, "field must not be empty");
                continue;
            }
            let Some(operator) = constraint.operator() else {
                violations.add(
                    path,
                    "operator must be one of UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS",
                );
                continue;
            };
            let value = constraint.value();
            match operator {
                ConstraintOperator::Unique => {
                    if value.is_some() {
                        violations.add(path, "UNIQUE takes no value");
                    }
                }
                ConstraintOperator::GroupBy => {
                    if value.is_some_and(|value| !value.parse::<u32>().is_ok_and(|n| n > 0)) {
                        violations.add(path, "GROUP_BY value must be a positive integer");
                    }
                }
                ConstraintOperator::MaxPer => {
                    if !value.is_some_and(|value| value.parse::<u32>().is_ok_and(|n| n > 0)) {
                        violations.add(path, "MAX_PER requires a positive integer value");
                    }
                }
                ConstraintOperator::Like | ConstraintOperator::Unlike => match value {
                    None | Some("") => {
                        violations.add(path, "LIKE and UNLIKE require a regular expression value");
                    }
                    Some(pattern) => {
                        if let Err(error) = regex::Regex::new(pattern) {
                            violations.add(
                                path,
                                format!("'{pattern}' is not a regular expression: {error}"),
                            );
                        }
                    }
                },
                ConstraintOperator::Cluster | ConstraintOperator::Is => {
                    if value.is_none_or(str::is_empty) {
                        violations.add(path, "CLUSTER and IS require a value");
                    }
                }
            }
        }
    }

    fn validate_health_checks(&self, violations: &mut Violations) {
        let port_count = self.port_count();
        for (index, check) in self.health_checks.iter().enumerate() {
            let base = format!("/healthChecks/{index}");
            if check.protocol == HealthCheckProtocol::Command
                && check.command.as_ref().is_none_or(|command| command.value.is_empty())
            {
                violations.add(format!("{base}/command"), "is required for COMMAND");
            }
            if check.port_index.is_some() && check.port.is_some() {
                violations.add(format!("{base}/port"), "must not be given with portIndex");
            }
            if let Some(port_index) = check.port_index {
                if port_index < 0 || port_index as usize >= port_count {
                    violations.add(
                        format!("{base}/portIndex"),
                        format!("must be < the number of ports ({port_count})"),
                    );
                }
            }
            if check.port.is_some_and(|port| !is_valid_port(port)) {
                violations.add(format!("{base}/port"), "must be in 0..=65535");
            }
            let seconds = [
                ("gracePeriodSeconds", check.grace_period_seconds),
                ("intervalSeconds", check.interval_seconds),
                ("timeoutSeconds", check.timeout_seconds),
                ("maxConsecutiveFailures", check.max_consecutive_failures),
                ("delaySeconds", check.delay_seconds),
            ];
            for (field, value) in seconds {
                if value < 0 {
                    violations.add(format!("{base}/{field}"), "must be >= 0");
                }
            }
        }
    }

    fn validate_strategies(&self, violations: &mut Violations) {
        let strategy = self.upgrade_strategy;
        let capacities = [
            ("/upgradeStrategy/minimumHealthCapacity", strategy.minimum_health_capacity),
            ("/upgradeStrategy/maximumOverCapacity", strategy.maximum_over_capacity),
        ];
        for (path, value) in capacities {
            if !(0.0..=1.0).contains(&value) {
                violations.add(path, "must be within [0, 1]");
            }
        }
        if !seconds_in_range(self.backoff_seconds) {
            violations.add("/backoffSeconds", SECONDS_RANGE);
        }
        if self.backoff_factor < 1.0 {
            violations.add("/backoffFactor", "must be >= 1");
        }
        if !seconds_in_range(self.max_launch_delay_seconds) {
            violations.add("/maxLaunchDelaySeconds", SECONDS_RANGE);
        }
        if self.instances > i64::from(MAX_INSTANCES) {
            violations.add("/instances", format!("must be <= {MAX_INSTANCES}"));
        }
        if let Some(Err(problem)) = self.role.as_deref().map(Role::parse) {
            violations.add("/role", problem);
        }
        for (index, role) in self.accepted_resource_roles.iter().enumerate() {
            if let Err(problem) = Role::parse(role) {
                violations.add(format!("/acceptedResourceRoles/{index}"), problem);
            }
        }
        if let UnreachableStrategy::Enabled { inactive_after_seconds, expunge_after_seconds } =
            self.unreachable_strategy
        {
            if !seconds_in_range(inactive_after_seconds) {
                violations.add("/unreachableStrategy/inactiveAfterSeconds", SECONDS_RANGE);
            }
            if !seconds_in_range(expunge_after_seconds) {
                violations.add("/unreachableStrategy/expungeAfterSeconds", SECONDS_RANGE);
            }
            if expunge_after_seconds < inactive_after_seconds {
                violations.add(
                    "/unreachableStrategy/expungeAfterSeconds",
                    "must be >= inactiveAfterSeconds",
                );
            }
        }
    }

    /// The `TaskInfo` for one instance on `agent_id`, taking host ports from `offer_ports`:
    /// fixed host ports (or, with `requirePorts`, the defined ports) must be in the offer;
    /// port 0 takes the lowest free offered port.
    pub fn task_info(
        &self,
        agent_id: AgentId,
        task_id: TaskId,
        offer_ports: &Ranges,
    ) -> Result<TaskInfo, LaunchError> {
        let host_ports = self.assign_host_ports(offer_ports)?;
        let mut resources = Resources::from_list(vec![
            Resource::scalar("cpus", scalar("cpus", self.cpus)?),
            Resource::scalar("mem", scalar("mem", self.mem)?),
            Resource::scalar("disk", scalar("disk", self.disk)?),
        ])
        .map_err(LaunchError::Resources)?;
        if self.gpus > 0 {
            let gpus = Resource::scalar("gpus", scalar("gpus", self.gpus as f64)?);
            resources.add(&Resources::from_list(vec![gpus]).map_err(LaunchError::Resources)?);
        }
        let taken: Vec<u64> = host_ports.iter().flatten().map(|&port| u64::from(port)).collect();
        if !taken.is_empty() {
            let ranges = Ranges::new(taken.iter().map(|&port| (port, port)).collect())
                .map_err(LaunchError::Resources)?;
            let ports = Resources::from_list(vec![Resource::ranges("ports", ranges)])
                .map_err(LaunchError::Resources)?;
            resources.add(&ports);
        }

        let mut environment: Vec<(String, String)> =
            self.env.iter().map(|(key, value)| (key.clone(), value.clone())).collect();
        let assigned: Vec<u32> = host_ports.iter().flatten().copied().collect();
        for (index, port) in assigned.iter().enumerate() {
            environment.push((format!("PORT{index}"), port.to_string()));
        }
        // Marathon also names each host port by its declared port (the container port when
        // bridged, else the service port) and by its name.
        for (port, host_port) in self.task_ports().iter().zip(&host_ports) {
            let Some(host_port) = host_port else { continue };
            if port.declared != 0 {
                environment.push((format!("PORT_{}", port.declared), host_port.to_string()));
            }
            if let Some(name) = port.name {
                environment.push((format!("PORT_{}", name.to_uppercase()), host_port.to_string()));
            }
        }
        if let Some(first) = assigned.first() {
            environment.push(("PORT".to_owned(), first.to_string()));
        }
        let ports_list: Vec<String> = assigned.iter().map(u32::to_string).collect();
        environment.push(("PORTS".to_owned(), ports_list.join(",")));
        environment.push(("MARATHON_APP_ID".to_owned(), self.id.clone()));

        let command = match (&self.cmd, &self.args) {
            (Some(cmd), _) => Some(CommandInfo {
                value: Some(cmd.clone()),
                shell: true,
                environment,
                ..CommandInfo::default()
            }),
            (None, Some(args)) => Some(CommandInfo {
                // Mesos execs `value` with `arguments` as argv; a Docker image keeps its own
                // entrypoint and receives the arguments alone.
                value: if self.docker_image().is_some() { None } else { args.first().cloned() },
                shell: false,
                arguments: args.clone(),
                environment,
                ..CommandInfo::default()
            }),
            (None, None) => {
                Some(CommandInfo { shell: false, environment, ..CommandInfo::default() })
            }
        };

        let health_check = match self.health_checks.first() {
            Some(check) => Some(self.mesos_health_check(check, &host_ports)?),
            None => None,
        };

        let discovery = self.discovery_info(&host_ports);
        Ok(TaskInfo {
            name: self.task_name(),
            task_id,
            agent_id,
            resources,
            executor: None,
            command,
            container: self.mesos_container(&host_ports),
            health_check,
            kill_policy: self.task_kill_grace_period_seconds.map(|seconds| KillPolicy {
                grace_period: Some(
                    Duration::try_from_secs_f64(seconds)
                        .expect("validation bounds taskKillGracePeriodSeconds to a duration"),
                ),
            }),
            labels: self
                .labels
                .iter()
                .map(|(key, value)| Label { key: key.clone(), value: Some(value.clone()) })
                .collect(),
            discovery: Some(discovery),
        })
    }

    /// Each port of a task (mapping or definition) as discovery sees it.
    fn task_ports(&self) -> Vec<TaskPort<'_>> {
        if self.is_bridged() {
            return self
                .port_mappings()
                .0
                .iter()
                .map(|m| TaskPort {
                    declared: m.container_port,
                    name: m.name.as_deref(),
                    protocol: &m.protocol,
                    labels: &m.labels,
                })
                .collect();
        }
        self.port_definitions()
            .iter()
            .map(|d| TaskPort {
                declared: d.port,
                name: d.name.as_deref(),
                protocol: &d.protocol,
                labels: &d.labels,
            })
            .collect()
    }

    /// Marathon's `DiscoveryInfo`: the reversed app name and every host port with its name,
    /// one entry per protocol of `"udp,tcp"`.
    fn discovery_info(&self, host_ports: &[Option<u32>]) -> DiscoveryInfo {
        let mut ports = Vec::new();
        for (port, host_port) in self.task_ports().iter().zip(host_ports) {
            let Some(number) = host_port else { continue };
            for protocol in port.protocol.split(',') {
                ports.push(DiscoveryPort {
                    number: *number,
                    name: port.name.map(str::to_owned),
                    protocol: Some(protocol.trim().to_owned()),
                    labels: port
                        .labels
                        .iter()
                        .map(|(key, value)| Label { key: key.clone(), value: Some(value.clone()) })
                        .collect(),
                });
            }
        }
        DiscoveryInfo {
            visibility: DiscoveryVisibility::Framework,
            name: Some(self.task_name()),
            ports,
            labels: Vec::new(),
        }
    }

    /// One entry per port of the task (mapping or definition); `None` for a mapping without
    /// a host port.
    fn assign_host_ports(&self, offer_ports: &Ranges) -> Result<Vec<Option<u32>>, LaunchError> {
        let wanted: Vec<Option<i64>> = if self.is_bridged() {
            self.port_mappings().0.iter().map(|mapping| mapping.host_port).collect()
        } else if self.require_ports {
            self.port_definitions().iter().map(|definition| Some(definition.port)).collect()
        } else {
            self.port_definitions().iter().map(|_| Some(0)).collect()
        };
        let fixed: Vec<u64> =
            wanted.iter().flatten().filter(|&&port| port > 0).map(|&p| p as u64).collect();
        for &port in &fixed {
            if !offer_ports.contains_value(port) {
                return Err(LaunchError::PortNotOffered(port));
            }
        }
        let mut free = offer_ports.clone();
        for &port in &fixed {
            free = free.difference(&Ranges::single(port, port));
        }
        let mut assigned = Vec::with_capacity(wanted.len());
        for port in wanted {
            let Some(port) = port else {
                assigned.push(None);
                continue;
            };
            if port > 0 {
                assigned.push(Some(port as u32));
                continue;
            }
            let next = free.take_first(1);
            let Some(&(begin, _)) = next.as_slice().first() else {
                return Err(LaunchError::NotEnoughPorts);
            };
            free = free.difference(&next);
            assigned.push(Some(begin as u32));
        }
        Ok(assigned)
    }

    fn mesos_container(&self, host_ports: &[Option<u32>]) -> Option<ContainerInfo> {
        let container = self.container.as_ref()?;
        let kind = match container.kind {
            ContainerKind::Mesos => model::ContainerType::Mesos,
            ContainerKind::Docker => model::ContainerType::Docker,
        };
        let docker = container.docker.as_ref().map(|docker| {
            let network = match docker.network {
                Some(DockerNetwork::Bridge) => model::DockerNetwork::Bridge,
                Some(DockerNetwork::Host) | None => model::DockerNetwork::Host,
            };
            let port_mappings = if self.is_bridged() {
                self.port_mappings()
                    .0
                    .iter()
                    .zip(host_ports)
                    .filter_map(|(mapping, host_port)| {
                        Some(model::PortMapping {
                            host_port: (*host_port)?,
                            container_port: mapping.container_port as u32,
                            protocol: Some(mapping.protocol.clone()),
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            };
            model::DockerInfo {
                image: docker.image.clone(),
                network,
                port_mappings,
                privileged: docker.privileged,
                parameters: docker
                    .parameters
                    .iter()
                    .map(|parameter| (parameter.key.clone(), parameter.value.clone()))
                    .collect(),
                force_pull_image: docker.force_pull_image,
            }
        });
        Some(ContainerInfo { kind, docker, hostname: None })
    }

    fn mesos_health_check(
        &self,
        check: &HealthCheck,
        host_ports: &[Option<u32>],
    ) -> Result<model::HealthCheck, LaunchError> {
        let port = match (check.port, check.port_index) {
            (Some(port), _) => Some(port as u32),
            (None, Some(index)) => Some(self.health_check_port(check, index, host_ports)?),
            (None, None) => None,
        };
        let kind = match check.protocol {
            HealthCheckProtocol::Command => model::HealthCheckKind::Command,
            HealthCheckProtocol::Tcp | HealthCheckProtocol::MesosTcp => model::HealthCheckKind::Tcp,
            HealthCheckProtocol::Http
            | HealthCheckProtocol::Https
            | HealthCheckProtocol::MesosHttp
            | HealthCheckProtocol::MesosHttps => model::HealthCheckKind::Http,
        };
        let mut mesos = model::HealthCheck::new(kind);
        match check.protocol {
            HealthCheckProtocol::Command => {
                mesos.command = Some(CommandInfo {
                    value: check.command.as_ref().map(|command| command.value.clone()),
                    ..CommandInfo::default()
                });
            }
            HealthCheckProtocol::Tcp | HealthCheckProtocol::MesosTcp => {
                mesos.tcp =
                    Some(model::TcpCheck { port: port.ok_or(LaunchError::NoHealthCheckPort)? });
            }
            HealthCheckProtocol::Http
            | HealthCheckProtocol::Https
            | HealthCheckProtocol::MesosHttp
            | HealthCheckProtocol::MesosHttps => {
                let secure = matches!(
                    check.protocol,
                    HealthCheckProtocol::Https | HealthCheckProtocol::MesosHttps
                );
                mesos.http = Some(model::HttpCheck {
                    scheme: Some(if secure { "https" } else { "http" }.to_owned()),
                    port: port.ok_or(LaunchError::NoHealthCheckPort)?,
                    path: check.path.clone(),
                });
            }
        }
        mesos.delay = seconds(check.delay_seconds);
        mesos.interval = seconds(check.interval_seconds);
        mesos.timeout = seconds(check.timeout_seconds);
        mesos.grace_period = seconds(check.grace_period_seconds);
        mesos.consecutive_failures =
            u32::try_from(check.max_consecutive_failures.max(0)).unwrap_or(u32::MAX);
        Ok(mesos)
    }

    /// Mesos-side checks of a bridged container run inside its network namespace, so they
    /// probe the container port; every other check probes the host port.
    fn health_check_port(
        &self,
        check: &HealthCheck,
        index: i64,
        host_ports: &[Option<u32>],
    ) -> Result<u32, LaunchError> {
        let index = usize::try_from(index).map_err(|_| LaunchError::NoHealthCheckPort)?;
        let mesos_side = matches!(
            check.protocol,
            HealthCheckProtocol::MesosHttp
                | HealthCheckProtocol::MesosHttps
                | HealthCheckProtocol::MesosTcp
        );
        if mesos_side && self.is_bridged() {
            let mapping =
                self.port_mappings().0.get(index).ok_or(LaunchError::NoHealthCheckPort)?;
            return Ok(mapping.container_port as u32);
        }
        host_ports.get(index).copied().flatten().ok_or(LaunchError::NoHealthCheckPort)
    }
}

/// Marathon's rules for a task's ports: service ports other than 0 are distinct, and so are
/// names, which are `[a-z0-9-]` as DNS labels are.
fn unique_ports<'a>(
    ports: impl Iterator<Item = (i64, Option<&'a str>)>,
    base: &str,
    field: &str,
    violations: &mut Violations,
) {
    let mut numbers = BTreeMap::new();
    let mut names = BTreeMap::new();
    for (index, (port, name)) in ports.enumerate() {
        if port != 0 && numbers.insert(port, index).is_some() {
            violations.add(format!("{base}/{index}/{field}"), "service ports must be unique");
        }
        let Some(name) = name else { continue };
        let label = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if name.is_empty() || !name.chars().all(label) {
            violations.add(format!("{base}/{index}/name"), "must match ^[a-z0-9-]+$");
        }
        if names.insert(name, index).is_some() {
            violations.add(format!("{base}/{index}/name"), "port names must be unique");
        }
    }
}

struct TaskPort<'a> {
    /// The container port when bridged, else the service port.
    declared: i64,
    name: Option<&'a str>,
    protocol: &'a str,
    labels: &'a BTreeMap<String, String>,
}

/// More instances than this in one app is a typo, not a plan.
const MAX_INSTANCES: u32 = 100_000;

fn permille(fraction: f64) -> u32 {
    (fraction * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32
}

fn scalar(name: &str, value: f64) -> Result<Scalar, LaunchError> {
    Scalar::from_f64(value)
        .ok_or_else(|| LaunchError::Resources(format!("{name} {value} is out of range")))
}

fn seconds(value: i64) -> Duration {
    Duration::from_secs(value.max(0) as u64)
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    #[error("host port {0} is not in the offer")]
    PortNotOffered(u64),
    #[error("the offer has too few ports")]
    NotEnoughPorts,
    #[error("the health check's port is not one of the task's ports")]
    NoHealthCheckPort,
    #[error("invalid resources: {0}")]
    Resources(String),
}

/// The longest time any app setting may name: ten years.
const MAX_SECONDS: f64 = 10.0 * 365.0 * 24.0 * 3600.0;
const SECONDS_RANGE: &str = "must be between 0 and 315360000 seconds (ten years)";

fn seconds_in_range(seconds: f64) -> bool {
    (0.0..=MAX_SECONDS).contains(&seconds)
}

fn validated_seconds(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds)
        .expect("validated definitions name seconds between 0 and ten years")
}
