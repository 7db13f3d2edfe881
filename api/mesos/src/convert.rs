//! Between Mesos v1 JSON and `corral-state` types. Inbound conversions validate and name the
//! offending field (`accept.operations[0].launch.task_infos[1].resources[2].scalar`);
//! outbound ones render what Mesos would.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use corral_state::model::{
    CommandInfo, CommandUri, ContainerInfo, ContainerType, DiscoveryInfo, DiscoveryPort,
    DiscoveryVisibility, DockerInfo, DockerNetwork, ExecutorInfo, FrameworkCapability,
    FrameworkInfo, HealthCheck, HealthCheckKind, HttpCheck, KillPolicy, Label, Offer, PortMapping,
    TaskInfo, TaskSource, TaskStatus, TcpCheck,
};
use corral_state::{
    AgentId, ExecutorId, Operation, Ranges, Reservation, Resource, Resources, Role, Scalar, TaskId,
    Value,
};
use smol_str::SmolStr;

use super::json::*;
use crate::error::FieldError;

/// Mesos's default `failover_timeout` is 0: the framework is removed as soon as it
/// disconnects.
const DEFAULT_FAILOVER_TIMEOUT: Duration = Duration::ZERO;

pub fn decode_base64(text: &str, field: &str) -> Result<Vec<u8>, FieldError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|error| FieldError::new(field, format!("is not valid base64: {error}")))
}

pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn role_from_json(text: &str, field: &str) -> Result<Role, FieldError> {
    Role::parse(text).map_err(|problem| FieldError::new(field, problem))
}

pub fn role_list(roles: &[String], field: &str) -> Result<Vec<Role>, FieldError> {
    roles
        .iter()
        .enumerate()
        .map(|(index, role)| role_from_json(role, &format!("{field}[{index}]")))
        .collect()
}

fn seconds(value: f64, field: &str) -> Result<Duration, FieldError> {
    if !value.is_finite() || value < 0.0 {
        return Err(FieldError::new(field, "must be a non-negative number of seconds"));
    }
    Ok(Duration::from_secs_f64(value.min(1e10)))
}

fn reservation_from_json(json: &ResourceJson, field: &str) -> Result<Reservation, FieldError> {
    // The newest reservation in the stack is the one that counts (no refinement here).
    if let Some(reservation) = json.reservations.last() {
        let role = role_from_json(&reservation.role, &format!("{field}.reservations.role"))?;
        return Ok(match reservation.kind.as_deref() {
            Some("STATIC") => Reservation::Static { role },
            None | Some("DYNAMIC") => {
                Reservation::Dynamic { role, principal: reservation.principal.clone() }
            }
            Some(other) => {
                return Err(FieldError::new(
                    &format!("{field}.reservations.type"),
                    format!("unknown reservation type '{other}'; expected STATIC or DYNAMIC"),
                ))
            }
        });
    }
    match json.role.as_deref() {
        None | Some("*") => Ok(Reservation::Unreserved),
        Some(role) => {
            Ok(Reservation::Static { role: role_from_json(role, &format!("{field}.role"))? })
        }
    }
}

pub fn resource_from_json(json: &ResourceJson, field: &str) -> Result<Resource, FieldError> {
    if json.name.is_empty() {
        return Err(FieldError::new(&format!("{field}.name"), "must not be empty"));
    }
    let value = match json.kind.as_str() {
        "SCALAR" => {
            let scalar = json.scalar.as_ref().ok_or_else(|| {
                FieldError::new(
                    &format!("{field}.scalar"),
                    "a SCALAR resource needs a scalar value",
                )
            })?;
            let amount = Scalar::from_f64(scalar.value)
                .filter(|amount| amount.milli() >= 0)
                .ok_or_else(|| {
                    FieldError::new(
                        &format!("{field}.scalar.value"),
                        "must be a finite, non-negative number",
                    )
                })?;
            Value::Scalar(amount)
        }
        "RANGES" => {
            let ranges = json.ranges.as_ref().ok_or_else(|| {
                FieldError::new(&format!("{field}.ranges"), "a RANGES resource needs ranges")
            })?;
            let pairs = ranges.range.iter().map(|range| (range.begin, range.end)).collect();
            Value::Ranges(
                Ranges::new(pairs)
                    .map_err(|problem| FieldError::new(&format!("{field}.ranges"), problem))?,
            )
        }
        "SET" => {
            let set = json.set.as_ref().ok_or_else(|| {
                FieldError::new(&format!("{field}.set"), "a SET resource needs items")
            })?;
            Value::Set(set.item.iter().cloned().collect::<BTreeSet<_>>())
        }
        other => {
            return Err(FieldError::new(
                &format!("{field}.type"),
                format!("unknown resource type '{other}'; expected SCALAR, RANGES or SET"),
            ))
        }
    };
    Ok(Resource {
        name: SmolStr::new(&json.name),
        reservation: reservation_from_json(json, field)?,
        value,
    })
}

pub fn resources_from_json(list: &[ResourceJson], field: &str) -> Result<Resources, FieldError> {
    let resources = list
        .iter()
        .enumerate()
        .map(|(index, resource)| resource_from_json(resource, &format!("{field}[{index}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Resources::from_list(resources).map_err(|problem| FieldError::new(field, problem))
}

pub fn resource_to_json(resource: &Resource, allocation_role: Option<&Role>) -> ResourceJson {
    let mut json = ResourceJson { name: resource.name.to_string(), ..ResourceJson::default() };
    match &resource.value {
        Value::Scalar(amount) => {
            json.kind = "SCALAR".to_owned();
            json.scalar = Some(ScalarJson { value: amount.as_f64() });
        }
        Value::Ranges(ranges) => {
            json.kind = "RANGES".to_owned();
            let range =
                ranges.as_slice().iter().map(|&(begin, end)| RangeJson { begin, end }).collect();
            json.ranges = Some(RangesJson { range });
        }
        Value::Set(items) => {
            json.kind = "SET".to_owned();
            json.set = Some(SetJson { item: items.iter().cloned().collect() });
        }
    }
    match &resource.reservation {
        Reservation::Unreserved => json.role = Some("*".to_owned()),
        Reservation::Static { role } => {
            json.role = Some(role.to_string());
            json.reservations = vec![ReservationJson {
                kind: Some("STATIC".to_owned()),
                role: role.to_string(),
                principal: None,
            }];
        }
        Reservation::Dynamic { role, principal } => {
            json.role = Some(role.to_string());
            json.reservations = vec![ReservationJson {
                kind: Some("DYNAMIC".to_owned()),
                role: role.to_string(),
                principal: principal.clone(),
            }];
        }
    }
    json.allocation_info =
        allocation_role.map(|role| AllocationInfoJson { role: Some(role.to_string()) });
    json
}

pub fn resources_to_json(
    resources: &Resources,
    allocation_role: Option<&Role>,
) -> Vec<ResourceJson> {
    resources.iter().map(|resource| resource_to_json(resource, allocation_role)).collect()
}

fn capability_from_json(
    kind: &str,
    field: &str,
) -> Result<Option<FrameworkCapability>, FieldError> {
    Ok(Some(match kind {
        "REVOCABLE_RESOURCES" => FrameworkCapability::RevocableResources,
        "TASK_KILLING_STATE" => FrameworkCapability::TaskKillingState,
        "GPU_RESOURCES" => FrameworkCapability::GpuResources,
        "SHARED_RESOURCES" => FrameworkCapability::SharedResources,
        "PARTITION_AWARE" => FrameworkCapability::PartitionAware,
        "MULTI_ROLE" => FrameworkCapability::MultiRole,
        "RESERVATION_REFINEMENT" => FrameworkCapability::ReservationRefinement,
        "REGION_AWARE" => FrameworkCapability::RegionAware,
        // Capabilities Corral has no behaviour for are accepted and ignored, as an older
        // Mesos master would.
        "UNKNOWN" | "OFFER_OPERATION_FEEDBACK" | "AGENT_DRAINING" => return Ok(None),
        other => return Err(FieldError::new(field, format!("unknown capability '{other}'"))),
    }))
}

pub fn capability_to_json(capability: FrameworkCapability) -> &'static str {
    match capability {
        FrameworkCapability::RevocableResources => "REVOCABLE_RESOURCES",
        FrameworkCapability::TaskKillingState => "TASK_KILLING_STATE",
        FrameworkCapability::GpuResources => "GPU_RESOURCES",
        FrameworkCapability::SharedResources => "SHARED_RESOURCES",
        FrameworkCapability::PartitionAware => "PARTITION_AWARE",
        FrameworkCapability::MultiRole => "MULTI_ROLE",
        FrameworkCapability::ReservationRefinement => "RESERVATION_REFINEMENT",
        FrameworkCapability::RegionAware => "REGION_AWARE",
    }
}

fn labels_from_json(labels: Option<&LabelsJson>) -> Vec<Label> {
    labels
        .map(|labels| {
            labels
                .labels
                .iter()
                .map(|l| Label { key: l.key.clone(), value: l.value.clone() })
                .collect()
        })
        .unwrap_or_default()
}

fn labels_to_json(labels: &[Label]) -> Option<LabelsJson> {
    if labels.is_empty() {
        return None;
    }
    Some(LabelsJson {
        labels: labels
            .iter()
            .map(|l| LabelJson { key: l.key.clone(), value: l.value.clone() })
            .collect(),
    })
}

pub fn framework_info_from_json(json: &FrameworkInfoJson) -> Result<FrameworkInfo, FieldError> {
    let field = "subscribe.framework_info";
    if json.name.trim().is_empty() {
        return Err(FieldError::new(&format!("{field}.name"), "must not be empty"));
    }
    let mut capabilities = BTreeSet::new();
    for (index, capability) in json.capabilities.iter().enumerate() {
        if let Some(capability) =
            capability_from_json(&capability.kind, &format!("{field}.capabilities[{index}].type"))?
        {
            capabilities.insert(capability);
        }
    }
    let roles = if !json.roles.is_empty() {
        if !capabilities.contains(&FrameworkCapability::MultiRole) {
            return Err(FieldError::new(
                &format!("{field}.roles"),
                "needs the MULTI_ROLE capability; use 'role' otherwise",
            ));
        }
        role_list(&json.roles, &format!("{field}.roles"))?
    } else {
        vec![role_from_json(json.role.as_deref().unwrap_or("*"), &format!("{field}.role"))?]
    };
    let failover_timeout = match json.failover_timeout {
        None => DEFAULT_FAILOVER_TIMEOUT,
        Some(value) => seconds(value, &format!("{field}.failover_timeout"))?,
    };
    Ok(FrameworkInfo {
        user: json.user.clone(),
        name: json.name.clone(),
        roles,
        failover_timeout,
        checkpoint: json.checkpoint.unwrap_or(false),
        hostname: json.hostname.clone(),
        principal: json.principal.clone(),
        webui_url: json.webui_url.clone(),
        capabilities,
        labels: labels_from_json(json.labels.as_ref()),
    })
}

pub fn framework_info_to_json(
    info: &FrameworkInfo,
    framework_id: &corral_state::FrameworkId,
) -> FrameworkInfoJson {
    FrameworkInfoJson {
        user: info.user.clone(),
        name: info.name.clone(),
        id: Some(IdJson::new(framework_id)),
        failover_timeout: Some(info.failover_timeout.as_secs_f64()),
        checkpoint: Some(info.checkpoint),
        role: (info.roles.len() == 1).then(|| info.roles[0].to_string()),
        roles: info.roles.iter().map(Role::to_string).collect(),
        hostname: info.hostname.clone(),
        principal: info.principal.clone(),
        webui_url: info.webui_url.clone(),
        capabilities: info
            .capabilities
            .iter()
            .map(|c| CapabilityJson { kind: capability_to_json(*c).to_owned() })
            .collect(),
        labels: labels_to_json(&info.labels),
    }
}

pub fn command_from_json(json: &CommandInfoJson) -> CommandInfo {
    CommandInfo {
        value: json.value.clone(),
        shell: json.shell.unwrap_or(true),
        arguments: json.arguments.clone(),
        environment: json
            .environment
            .as_ref()
            .map(|env| env.variables.iter().map(|v| (v.name.clone(), v.value.clone())).collect())
            .unwrap_or_default(),
        user: json.user.clone(),
        uris: json
            .uris
            .iter()
            .map(|uri| CommandUri {
                value: uri.value.clone(),
                executable: uri.executable.unwrap_or(false),
                extract: uri.extract.unwrap_or(true),
            })
            .collect(),
    }
}

pub fn command_to_json(command: &CommandInfo) -> CommandInfoJson {
    CommandInfoJson {
        value: command.value.clone(),
        shell: Some(command.shell),
        arguments: command.arguments.clone(),
        environment: (!command.environment.is_empty()).then(|| EnvironmentJson {
            variables: command
                .environment
                .iter()
                .map(|(name, value)| VariableJson { name: name.clone(), value: value.clone() })
                .collect(),
        }),
        user: command.user.clone(),
        uris: command
            .uris
            .iter()
            .map(|uri| UriJson {
                value: uri.value.clone(),
                executable: Some(uri.executable),
                extract: Some(uri.extract),
            })
            .collect(),
    }
}

pub fn container_from_json(
    json: &ContainerInfoJson,
    field: &str,
) -> Result<ContainerInfo, FieldError> {
    let kind = match json.kind.as_str() {
        "MESOS" => ContainerType::Mesos,
        "DOCKER" => ContainerType::Docker,
        other => {
            return Err(FieldError::new(
                &format!("{field}.type"),
                format!("unknown container type '{other}'; expected MESOS or DOCKER"),
            ))
        }
    };
    let docker = match &json.docker {
        None if kind == ContainerType::Docker => {
            return Err(FieldError::new(
                &format!("{field}.docker"),
                "a DOCKER container needs docker.image",
            ))
        }
        None => None,
        Some(docker) => {
            if docker.image.trim().is_empty() {
                return Err(FieldError::new(&format!("{field}.docker.image"), "must not be empty"));
            }
            let network = match docker.network.as_deref() {
                None | Some("HOST") => DockerNetwork::Host,
                Some("BRIDGE") => DockerNetwork::Bridge,
                Some("NONE") => DockerNetwork::None,
                Some("USER") => DockerNetwork::User,
                Some(other) => {
                    return Err(FieldError::new(
                        &format!("{field}.docker.network"),
                        format!("unknown network '{other}'; expected HOST, BRIDGE, NONE or USER"),
                    ))
                }
            };
            Some(DockerInfo {
                image: docker.image.clone(),
                network,
                port_mappings: docker
                    .port_mappings
                    .iter()
                    .map(|m| PortMapping {
                        host_port: m.host_port,
                        container_port: m.container_port,
                        protocol: m.protocol.clone(),
                    })
                    .collect(),
                privileged: docker.privileged.unwrap_or(false),
                parameters: docker
                    .parameters
                    .iter()
                    .map(|p| (p.key.clone(), p.value.clone()))
                    .collect(),
                force_pull_image: docker.force_pull_image.unwrap_or(false),
            })
        }
    };
    Ok(ContainerInfo { kind, docker, hostname: json.hostname.clone() })
}

pub fn container_to_json(container: &ContainerInfo) -> ContainerInfoJson {
    ContainerInfoJson {
        kind: match container.kind {
            ContainerType::Mesos => "MESOS",
            ContainerType::Docker => "DOCKER",
        }
        .to_owned(),
        docker: container.docker.as_ref().map(|docker| DockerInfoJson {
            image: docker.image.clone(),
            network: Some(
                match docker.network {
                    DockerNetwork::Host => "HOST",
                    DockerNetwork::Bridge => "BRIDGE",
                    DockerNetwork::None => "NONE",
                    DockerNetwork::User => "USER",
                }
                .to_owned(),
            ),
            port_mappings: docker
                .port_mappings
                .iter()
                .map(|m| PortMappingJson {
                    host_port: m.host_port,
                    container_port: m.container_port,
                    protocol: m.protocol.clone(),
                })
                .collect(),
            privileged: Some(docker.privileged),
            parameters: docker
                .parameters
                .iter()
                .map(|(key, value)| ParameterJson { key: key.clone(), value: value.clone() })
                .collect(),
            force_pull_image: Some(docker.force_pull_image),
        }),
        hostname: container.hostname.clone(),
    }
}

pub fn health_check_from_json(
    json: &HealthCheckJson,
    field: &str,
) -> Result<HealthCheck, FieldError> {
    // Before Mesos 1.2 the type was implied by which field was set.
    let kind = match json.kind.as_deref() {
        Some("COMMAND") => HealthCheckKind::Command,
        Some("HTTP") => HealthCheckKind::Http,
        Some("TCP") => HealthCheckKind::Tcp,
        None if json.command.is_some() => HealthCheckKind::Command,
        None if json.http.is_some() => HealthCheckKind::Http,
        None if json.tcp.is_some() => HealthCheckKind::Tcp,
        None => return Err(FieldError::new(&format!("{field}.type"), "is required")),
        Some(other) => {
            return Err(FieldError::new(
                &format!("{field}.type"),
                format!("unknown health check type '{other}'; expected COMMAND, HTTP or TCP"),
            ))
        }
    };
    let mut check = HealthCheck::new(kind);
    check.command = json.command.as_ref().map(command_from_json);
    check.http = json.http.as_ref().map(|http| HttpCheck {
        scheme: http.scheme.clone(),
        port: http.port,
        path: http.path.clone(),
    });
    check.tcp = json.tcp.as_ref().map(|tcp| TcpCheck { port: tcp.port });
    let missing = match kind {
        HealthCheckKind::Command => check.command.is_none().then_some("command"),
        HealthCheckKind::Http => check.http.is_none().then_some("http"),
        HealthCheckKind::Tcp => check.tcp.is_none().then_some("tcp"),
    };
    if let Some(missing) = missing {
        return Err(FieldError::new(
            &format!("{field}.{missing}"),
            "is required for this health check type",
        ));
    }
    if let Some(value) = json.delay_seconds {
        check.delay = seconds(value, &format!("{field}.delay_seconds"))?;
    }
    if let Some(value) = json.interval_seconds {
        check.interval = seconds(value, &format!("{field}.interval_seconds"))?;
    }
    if let Some(value) = json.timeout_seconds {
        check.timeout = seconds(value, &format!("{field}.timeout_seconds"))?;
    }
    if let Some(value) = json.grace_period_seconds {
        check.grace_period = seconds(value, &format!("{field}.grace_period_seconds"))?;
    }
    if let Some(value) = json.consecutive_failures {
        check.consecutive_failures = value;
    }
    Ok(check)
}

pub fn health_check_to_json(check: &HealthCheck) -> HealthCheckJson {
    HealthCheckJson {
        kind: Some(
            match check.kind {
                HealthCheckKind::Command => "COMMAND",
                HealthCheckKind::Http => "HTTP",
                HealthCheckKind::Tcp => "TCP",
            }
            .to_owned(),
        ),
        command: check.command.as_ref().map(command_to_json),
        http: check.http.as_ref().map(|http| HttpCheckJson {
            scheme: http.scheme.clone(),
            port: http.port,
            path: http.path.clone(),
        }),
        tcp: check.tcp.map(|tcp| TcpCheckJson { port: tcp.port }),
        delay_seconds: Some(check.delay.as_secs_f64()),
        interval_seconds: Some(check.interval.as_secs_f64()),
        timeout_seconds: Some(check.timeout.as_secs_f64()),
        consecutive_failures: Some(check.consecutive_failures),
        grace_period_seconds: Some(check.grace_period.as_secs_f64()),
    }
}

pub fn kill_policy_from_json(json: &KillPolicyJson) -> Result<KillPolicy, FieldError> {
    let grace_period = match &json.grace_period {
        None => None,
        Some(duration) if duration.nanoseconds < 0 => {
            return Err(FieldError::new(
                "kill_policy.grace_period.nanoseconds",
                "must not be negative",
            ))
        }
        Some(duration) => Some(Duration::from_nanos(duration.nanoseconds as u64)),
    };
    Ok(KillPolicy { grace_period })
}

pub fn kill_policy_to_json(policy: &KillPolicy) -> KillPolicyJson {
    KillPolicyJson {
        grace_period: policy.grace_period.map(|grace| DurationInfoJson {
            nanoseconds: grace.as_nanos().min(i64::MAX as u128) as i64,
        }),
    }
}

pub fn executor_from_json(
    json: &ExecutorInfoJson,
    field: &str,
) -> Result<ExecutorInfo, FieldError> {
    if json.executor_id.value.is_empty() {
        return Err(FieldError::new(&format!("{field}.executor_id"), "must not be empty"));
    }
    Ok(ExecutorInfo {
        executor_id: ExecutorId::from(json.executor_id.value.as_str()),
        name: json.name.clone(),
        command: json.command.as_ref().map(command_from_json),
        container: json
            .container
            .as_ref()
            .map(|c| container_from_json(c, &format!("{field}.container")))
            .transpose()?,
        resources: resources_from_json(&json.resources, &format!("{field}.resources"))?,
    })
}

pub fn executor_to_json(executor: &ExecutorInfo) -> ExecutorInfoJson {
    ExecutorInfoJson {
        executor_id: IdJson::new(&executor.executor_id),
        name: executor.name.clone(),
        command: executor.command.as_ref().map(command_to_json),
        container: executor.container.as_ref().map(container_to_json),
        resources: resources_to_json(&executor.resources, None),
    }
}

pub fn task_info_from_json(json: &TaskInfoJson, field: &str) -> Result<TaskInfo, FieldError> {
    if json.task_id.value.is_empty() {
        return Err(FieldError::new(&format!("{field}.task_id"), "must not be empty"));
    }
    Ok(TaskInfo {
        name: json.name.clone(),
        task_id: TaskId::from(json.task_id.value.as_str()),
        agent_id: AgentId::from(json.agent_id.value.as_str()),
        resources: resources_from_json(&json.resources, &format!("{field}.resources"))?,
        executor: json
            .executor
            .as_ref()
            .map(|e| executor_from_json(e, &format!("{field}.executor")))
            .transpose()?,
        command: json.command.as_ref().map(command_from_json),
        container: json
            .container
            .as_ref()
            .map(|c| container_from_json(c, &format!("{field}.container")))
            .transpose()?,
        health_check: json
            .health_check
            .as_ref()
            .map(|h| health_check_from_json(h, &format!("{field}.health_check")))
            .transpose()?,
        kill_policy: json.kill_policy.as_ref().map(kill_policy_from_json).transpose()?,
        labels: labels_from_json(json.labels.as_ref()),
        discovery: json
            .discovery
            .as_ref()
            .map(|d| discovery_from_json(d, &format!("{field}.discovery")))
            .transpose()?,
    })
}

fn discovery_from_json(json: &DiscoveryInfoJson, field: &str) -> Result<DiscoveryInfo, FieldError> {
    let visibility = DiscoveryVisibility::from_mesos_str(&json.visibility).ok_or_else(|| {
        FieldError::new(
            &format!("{field}.visibility"),
            format!("unknown visibility {:?}: FRAMEWORK, CLUSTER or EXTERNAL", json.visibility),
        )
    })?;
    let ports = json.ports.as_ref().map_or(&[][..], |ports| &ports.ports[..]);
    Ok(DiscoveryInfo {
        visibility,
        name: json.name.clone(),
        ports: ports
            .iter()
            .map(|port| DiscoveryPort {
                number: port.number,
                name: port.name.clone(),
                protocol: port.protocol.clone(),
                labels: labels_from_json(port.labels.as_ref()),
            })
            .collect(),
        labels: labels_from_json(json.labels.as_ref()),
    })
}

pub fn discovery_to_json(discovery: &DiscoveryInfo) -> DiscoveryInfoJson {
    DiscoveryInfoJson {
        visibility: discovery.visibility.as_mesos_str().to_owned(),
        name: discovery.name.clone(),
        ports: Some(PortsJson {
            ports: discovery
                .ports
                .iter()
                .map(|port| PortJson {
                    number: port.number,
                    name: port.name.clone(),
                    protocol: port.protocol.clone(),
                    labels: labels_to_json(&port.labels),
                })
                .collect(),
        }),
        labels: labels_to_json(&discovery.labels),
    }
}

pub fn task_info_to_json(task: &TaskInfo, allocation_role: Option<&Role>) -> TaskInfoJson {
    TaskInfoJson {
        name: task.name.clone(),
        task_id: IdJson::new(&task.task_id),
        agent_id: IdJson::new(&task.agent_id),
        resources: resources_to_json(&task.resources, allocation_role),
        executor: task.executor.as_ref().map(executor_to_json),
        command: task.command.as_ref().map(command_to_json),
        container: task.container.as_ref().map(container_to_json),
        health_check: task.health_check.as_ref().map(health_check_to_json),
        kill_policy: task.kill_policy.as_ref().map(kill_policy_to_json),
        labels: labels_to_json(&task.labels),
        discovery: task.discovery.as_ref().map(discovery_to_json),
    }
}

pub fn operation_from_json(json: &OperationJson, field: &str) -> Result<Operation, FieldError> {
    match json.kind.as_str() {
        "LAUNCH" => {
            let launch = json.launch.as_ref().ok_or_else(|| FieldError::new(&format!("{field}.launch"), "is required for LAUNCH"))?;
            let task_infos = launch
                .task_infos
                .iter()
                .enumerate()
                .map(|(index, task)| task_info_from_json(task, &format!("{field}.launch.task_infos[{index}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Operation::Launch { task_infos })
        }
        "LAUNCH_GROUP" => {
            let group = json
                .launch_group
                .as_ref()
                .ok_or_else(|| FieldError::new(&format!("{field}.launch_group"), "is required for LAUNCH_GROUP"))?;
            let executor = executor_from_json(&group.executor, &format!("{field}.launch_group.executor"))?;
            let task_infos = group
                .task_group
                .tasks
                .iter()
                .enumerate()
                .map(|(index, task)| task_info_from_json(task, &format!("{field}.launch_group.task_group.tasks[{index}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Operation::LaunchGroup { executor: Box::new(executor), task_infos })
        }
        "RESERVE" => {
            let reserve = json.reserve.as_ref().ok_or_else(|| FieldError::new(&format!("{field}.reserve"), "is required for RESERVE"))?;
            Ok(Operation::Reserve { resources: resources_from_json(&reserve.resources, &format!("{field}.reserve.resources"))? })
        }
        "UNRESERVE" => {
            let unreserve =
                json.unreserve.as_ref().ok_or_else(|| FieldError::new(&format!("{field}.unreserve"), "is required for UNRESERVE"))?;
            Ok(Operation::Unreserve { resources: resources_from_json(&unreserve.resources, &format!("{field}.unreserve.resources"))? })
        }
        other => Err(FieldError::new(
            &format!("{field}.type"),
            format!("unsupported operation '{other}'; Corral supports LAUNCH, LAUNCH_GROUP, RESERVE, UNRESERVE"),
        )),
    }
}

pub fn source_to_json(source: TaskSource) -> &'static str {
    match source {
        TaskSource::Master => "SOURCE_MASTER",
        TaskSource::Agent => "SOURCE_AGENT",
        TaskSource::Executor => "SOURCE_EXECUTOR",
    }
}

pub fn task_status_to_json(status: &TaskStatus) -> TaskStatusJson {
    TaskStatusJson {
        task_id: IdJson::new(&status.task_id),
        state: status.state.as_mesos_str().to_owned(),
        message: status.message.clone(),
        source: Some(source_to_json(status.source).to_owned()),
        reason: status.reason.map(|reason| reason.as_mesos_str().to_owned()),
        healthy: status.healthy,
        agent_id: status.agent_id.as_ref().map(IdJson::new),
        executor_id: status.executor_id.as_ref().map(IdJson::new),
        timestamp: status.timestamp.as_secs_f64(),
        uuid: status.uuid.as_ref().map(|uuid| uuid.to_string()),
    }
}

pub fn offer_to_json(offer: &Offer) -> OfferJson {
    OfferJson {
        id: IdJson::new(&offer.id),
        framework_id: IdJson::new(&offer.framework_id),
        agent_id: IdJson::new(&offer.agent_id),
        hostname: offer.hostname.clone(),
        resources: resources_to_json(&offer.resources, Some(&offer.role)),
        allocation_info: AllocationInfoJson { role: Some(offer.role.to_string()) },
    }
}
