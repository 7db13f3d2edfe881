//! The records: a pure function of the state, the masters and the configuration.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use corral_state::model::{Agent, Liveness, Task};
use corral_state::{ClusterState, Resources};
use serde::Serialize;

/// What Mesos-DNS reads from its config file, and what we serve with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsConfig {
    /// Without dots at either end: `mesos`.
    pub domain: String,
    /// Seconds. Answers follow the state as it is applied, so a short one costs nothing.
    pub ttl: u32,
    /// Where the DNS server listens, if it does (`--dns-listen`).
    pub listen: Option<SocketAddr>,
}

impl Default for DnsConfig {
    fn default() -> DnsConfig {
        DnsConfig { domain: "mesos".to_owned(), ttl: 5, listen: None }
    }
}

/// The masters as the answering master knows them (from the log, not the state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Masters {
    pub leader: Option<SocketAddr>,
    /// In member order.
    pub members: Vec<SocketAddr>,
    /// The master answering (`ns1.{domain}`).
    pub this: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "rtype")]
pub enum RecordData {
    A {
        ip: Ipv4Addr,
    },
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Ns {
        host: String,
    },
    Soa {
        mname: String,
        rname: String,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
}

/// One record, as `/v1/enumerate` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Record {
    pub name: String,
    pub data: RecordData,
}

/// A task's records, for `/v1/enumerate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaskRecords {
    pub name: String,
    pub id: String,
    pub records: Vec<Record>,
}

/// Every record, by fully qualified lower-case name ending in a dot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    pub domain: String,
    pub ttl: u32,
    pub names: BTreeMap<String, Vec<RecordData>>,
    /// Framework label → its tasks' records.
    pub frameworks: BTreeMap<String, Vec<TaskRecords>>,
}

/// Mesos-DNS's SOA timers (its defaults).
const SOA_REFRESH: u32 = 60;
const SOA_RETRY: u32 = 600;
const SOA_EXPIRE: u32 = 86_400;
const SOA_MINTTL: u32 = 60;

impl Records {
    /// The records for `state`. `serial` is the SOA serial (the applied log index, so it
    /// rises with every change).
    pub fn build(
        state: &ClusterState,
        masters: &Masters,
        config: &DnsConfig,
        serial: u32,
    ) -> Records {
        let domain = config.domain.trim_matches('.').to_ascii_lowercase();
        let tail = format!("{domain}.");
        let mut records = Records { domain: tail.clone(), ttl: config.ttl, ..Records::default() };
        records.add(&tail, RecordData::Ns { host: format!("ns1.{tail}") });
        records.add(
            &tail,
            RecordData::Soa {
                mname: format!("ns1.{tail}"),
                rname: format!("root.ns1.{tail}"),
                serial,
                refresh: SOA_REFRESH,
                retry: SOA_RETRY,
                expire: SOA_EXPIRE,
                minimum: SOA_MINTTL,
            },
        );
        if let IpAddr::V4(ip) = masters.this {
            records.add(&format!("ns1.{tail}"), RecordData::A { ip });
        }
        if let Some(SocketAddr::V4(leader)) = masters.leader {
            records.add(&format!("leader.{tail}"), RecordData::A { ip: *leader.ip() });
            for protocol in ["_tcp", "_udp"] {
                records.add(
                    &format!("_leader.{protocol}.{tail}"),
                    srv(leader.port(), format!("leader.{tail}")),
                );
            }
        }
        for (index, member) in masters.members.iter().enumerate() {
            let SocketAddr::V4(member) = member else { continue };
            records.add(&format!("master.{tail}"), RecordData::A { ip: *member.ip() });
            records.add(&format!("master{index}.{tail}"), RecordData::A { ip: *member.ip() });
        }
        for agent in state.agents().values() {
            if agent.liveness != Liveness::Reachable {
                continue;
            }
            let Some(address) = agent_address(agent) else { continue };
            records.add(&format!("slave.{tail}"), RecordData::A { ip: *address.ip() });
            records
                .add(&format!("_slave._tcp.{tail}"), srv(address.port(), format!("slave.{tail}")));
        }
        for framework in state.frameworks().values() {
            let framework_label = domain_fragment(&framework.info.name);
            if framework_label.is_empty() {
                continue;
            }
            for task in framework.tasks.values() {
                if !discoverable(task) {
                    continue;
                }
                let Some(agent) = state.agent(task.agent_id()) else { continue };
                let Some(address) = agent_address(agent) else { continue };
                let task_records = task_records(task, *address.ip(), &framework_label, &tail);
                for record in &task_records.records {
                    records.add(&record.name, record.data.clone());
                }
                records.frameworks.entry(framework_label.clone()).or_default().push(task_records);
            }
        }
        for data in records.names.values_mut() {
            data.sort();
            data.dedup();
        }
        records
    }

    fn add(&mut self, name: &str, data: RecordData) {
        self.names.entry(name.to_owned()).or_default().push(data);
    }

    /// The records at `name` (any case, with or without the final dot).
    pub fn at(&self, name: &str) -> Option<&[RecordData]> {
        let mut name = name.to_ascii_lowercase();
        if !name.ends_with('.') {
            name.push('.');
        }
        self.names.get(&name).map(Vec::as_slice)
    }

    /// Whether `name` is the domain or under it.
    pub fn in_domain(&self, name: &str) -> bool {
        let mut name = name.to_ascii_lowercase();
        if !name.ends_with('.') {
            name.push('.');
        }
        name == self.domain || name.ends_with(&format!(".{}", self.domain))
    }
}

fn srv(port: u16, target: String) -> RecordData {
    RecordData::Srv { priority: 0, weight: 1, port, target }
}

/// Health-aware, as Mesos-DNS is not: RUNNING, not being killed, and healthy when checked.
fn discoverable(task: &Task) -> bool {
    task.is_ready(task.info.health_check.is_some())
}

fn agent_address(agent: &Agent) -> Option<std::net::SocketAddrV4> {
    match agent.info.address.parse::<SocketAddr>().ok()? {
        SocketAddr::V4(address) => Some(address),
        SocketAddr::V6(_) => None,
    }
}

fn task_records(task: &Task, ip: Ipv4Addr, framework: &str, tail: &str) -> TaskRecords {
    let discovery = task.info.discovery.as_ref();
    let name = discovery.and_then(|d| d.name.as_deref()).unwrap_or(&task.info.name);
    let label = label(name);
    let canonical =
        format!("{label}-{}-{}.{framework}", hash_label(task.id().as_str()), agent_tail(task));
    let mut records = Vec::new();
    let mut add = |name: String, data: RecordData| records.push(Record { name, data });
    for host in [format!("{label}.{framework}"), canonical.clone()] {
        add(format!("{host}.{tail}"), RecordData::A { ip });
        add(format!("{host}.slave.{tail}"), RecordData::A { ip });
    }
    let slave_target = format!("{canonical}.slave.{tail}");
    let resource_ports = port_numbers(task.resources());
    for protocol in ["_tcp", "_udp"] {
        for &port in &resource_ports {
            add(
                format!("_{label}.{protocol}.{framework}.slave.{tail}"),
                srv(port, slave_target.clone()),
            );
            if discovery.is_none() {
                add(
                    format!("_{label}.{protocol}.{framework}.{tail}"),
                    srv(port, slave_target.clone()),
                );
            }
        }
    }
    let target = format!("{canonical}.{tail}");
    for port in discovery.map_or(&[][..], |d| &d.ports[..]) {
        let Ok(number) = u16::try_from(port.number) else { continue };
        let protocol = match port.protocol.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("udp") => "_udp",
            _ => "_tcp",
        };
        add(format!("_{label}.{protocol}.{framework}.{tail}"), srv(number, target.clone()));
        if let Some(name) = port.name.as_deref() {
            add(
                format!("_{}._{label}.{protocol}.{framework}.{tail}", crate::label(name)),
                srv(number, target.clone()),
            );
        }
    }
    records.sort_by(|a, b| (&a.name, &a.data).cmp(&(&b.name, &b.data)));
    records.dedup();
    TaskRecords { name: label, id: task.id().as_str().to_owned(), records }
}

fn port_numbers(resources: &Resources) -> Vec<u16> {
    resources
        .ranges("ports")
        .as_slice()
        .iter()
        .flat_map(|&(begin, end)| begin..=end)
        .filter_map(|port| u16::try_from(port).ok())
        .collect()
}

/// An RFC 1123 label as Mesos-DNS makes one: lower case, anything but letters, digits and
/// `-` (dots included) becomes `-`, no `-` at either end, at most 63 characters.
pub fn label(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let mut label: String = mapped.trim_matches('-').chars().take(63).collect();
    while label.ends_with('-') {
        label.pop();
    }
    label
}

/// A framework's name as a dotted domain fragment, each part a label.
fn domain_fragment(name: &str) -> String {
    let parts: Vec<String> = name.split('.').map(label).filter(|part| !part.is_empty()).collect();
    parts.join(".")
}

/// Five z-base-32 characters of a hash of the task id, as Mesos-DNS's canonical names have
/// (it hashes with SHA-1; the name is opaque, only its uniqueness matters).
fn hash_label(task_id: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
    let hash = blake3::hash(task_id.as_bytes());
    let bytes = hash.as_bytes();
    let bits = u64::from_be_bytes(bytes[..8].try_into().expect("a blake3 hash has 32 bytes"));
    (0..5).map(|i| char::from(ALPHABET[((bits >> (59 - 5 * i)) & 31) as usize])).collect()
}

/// The agent id's last `-` part, as Mesos-DNS's `slaveIDTail`.
fn agent_tail(task: &Task) -> String {
    let id = task.agent_id().as_str();
    label(id.rsplit('-').next().unwrap_or(id))
}
