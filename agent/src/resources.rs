//! What the agent offers: auto-detected with Mesos's rules, overridden by `--resources`, and
//! described by `--attributes`.

use std::path::Path;

use corral_state::model::Attributes;
use corral_state::resources::ResourceParseError;
use corral_state::{parse_resources, Ranges, Resource, Resources, Scalar};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// Mesos's default port range for agents.
pub const DEFAULT_PORTS: (u64, u64) = (31000, 32000);

#[derive(Debug, thiserror::Error)]
pub enum ResourcesError {
    #[error("--resources: {0}")]
    InvalidResources(#[from] ResourceParseError),
    #[error("--resources: {0}")]
    InvalidResourceValue(String),
    #[error("--attributes: {0}")]
    InvalidAttributes(String),
    #[error("cannot read {path}: {source}")]
    Probe { path: String, source: std::io::Error },
}

/// The raw facts resources are derived from, so the rules can be tested without a machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MachineFacts {
    pub cores: u64,
    pub total_memory_bytes: u64,
    pub free_disk_bytes: u64,
}

impl MachineFacts {
    /// Reads the core count, `/proc/meminfo` and the free space of the file system holding
    /// `work_dir` (which must exist).
    pub fn probe(work_dir: &Path) -> Result<MachineFacts, ResourcesError> {
        let cores =
            std::thread::available_parallelism().map(|count| count.get() as u64).unwrap_or(1);
        let meminfo = std::fs::read_to_string("/proc/meminfo")
            .map_err(|source| ResourcesError::Probe { path: "/proc/meminfo".to_owned(), source })?;
        let total_memory_bytes =
            parse_mem_total(&meminfo).ok_or_else(|| ResourcesError::Probe {
                path: "/proc/meminfo".to_owned(),
                source: std::io::Error::other("no MemTotal line"),
            })?;
        let stat = nix::sys::statvfs::statvfs(work_dir).map_err(|errno| ResourcesError::Probe {
            path: work_dir.display().to_string(),
            source: std::io::Error::from(errno),
        })?;
        let free_disk_bytes = stat.blocks_available() as u64 * stat.fragment_size() as u64;
        Ok(MachineFacts { cores, total_memory_bytes, free_disk_bytes })
    }
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Mesos's rules: cpus = cores; mem = total − 1 GiB, or half below 2 GiB; disk = free − 5 GiB,
/// or half below 10 GiB; ports `[31000-32000]`. Memory and disk are in MiB, as in Mesos.
pub fn default_resources(facts: &MachineFacts) -> Resources {
    let memory_bytes = if facts.total_memory_bytes >= 2 * GIB {
        facts.total_memory_bytes - GIB
    } else {
        facts.total_memory_bytes / 2
    };
    let disk_bytes = if facts.free_disk_bytes >= 10 * GIB {
        facts.free_disk_bytes - 5 * GIB
    } else {
        facts.free_disk_bytes / 2
    };
    let list = vec![
        Resource::scalar("cpus", Scalar::from_units(facts.cores as i64)),
        Resource::scalar("mem", Scalar::from_units((memory_bytes / MIB) as i64)),
        Resource::scalar("disk", Scalar::from_units((disk_bytes / MIB) as i64)),
        Resource::ranges("ports", Ranges::single(DEFAULT_PORTS.0, DEFAULT_PORTS.1)),
    ];
    Resources::from_list(list).unwrap_or_default()
}

/// The detected defaults with every resource named in `override_text` replaced by the
/// override, as Mesos does: `--resources 'cpus:2'` keeps the detected mem, disk and ports.
pub fn merge_override(
    detected: &Resources,
    override_text: Option<&str>,
) -> Result<Resources, ResourcesError> {
    let Some(override_text) = override_text else {
        return Ok(detected.clone());
    };
    let overrides = parse_resources(override_text)?;
    for resource in overrides.iter() {
        if matches!(resource.name.as_str(), "cpus" | "mem" | "disk") {
            if let corral_state::Value::Scalar(amount) = &resource.value {
                if amount.is_zero() {
                    return Err(ResourcesError::InvalidResourceValue(format!(
                        "{} must be greater than zero",
                        resource.name
                    )));
                }
            } else {
                return Err(ResourcesError::InvalidResourceValue(format!(
                    "{} must be a number",
                    resource.name
                )));
            }
        }
        if resource.name == "ports" && !matches!(resource.value, corral_state::Value::Ranges(_)) {
            return Err(ResourcesError::InvalidResourceValue(
                "ports must be ranges such as [31000-32000]".to_owned(),
            ));
        }
    }
    let kept = detected.filter(|resource| overrides.iter().all(|o| o.name != resource.name));
    Ok(kept.plus(&overrides))
}

/// What the future `corral agent` command calls: detection on this machine, then the
/// `--resources` override. A malformed override is an error naming the item and problem.
pub fn agent_resources(
    work_dir: &Path,
    override_text: Option<&str>,
) -> Result<Resources, ResourcesError> {
    let facts = MachineFacts::probe(work_dir)?;
    merge_override(&default_resources(&facts), override_text)
}

/// Parses `--attributes` (`rack:a;zone:2`); absent means none.
pub fn agent_attributes(text: Option<&str>) -> Result<Attributes, ResourcesError> {
    match text {
        None => Ok(Attributes::default()),
        Some(text) => Attributes::parse(text).map_err(ResourcesError::InvalidAttributes),
    }
}
