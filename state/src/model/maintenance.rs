use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// A machine as maintenance names it: a hostname, an IP, or both (Mesos `MachineID`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MachineId {
    pub hostname: Option<String>,
    pub ip: Option<String>,
}

impl MachineId {
    /// Whether an agent with this hostname and address runs on this machine.
    pub fn matches(&self, hostname: &str, address: &str) -> bool {
        let ip = address.rsplit_once(':').map(|(ip, _)| ip).unwrap_or(address);
        let hostname_ok = self.hostname.as_deref().is_none_or(|h| h == hostname);
        let ip_ok = self.ip.as_deref().is_none_or(|i| i == ip);
        (self.hostname.is_some() || self.ip.is_some()) && hostname_ok && ip_ok
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unavailability {
    pub start: Timestamp,
    pub duration: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    pub machine_ids: Vec<MachineId>,
    pub unavailability: Unavailability,
}

/// Mesos `MachineInfo.Mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MachineMode {
    Up,
    /// Scheduled for maintenance; still in service.
    Draining,
    /// In maintenance; agents on it are removed and new ones refused.
    Down,
}
