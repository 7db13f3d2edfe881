//! Per-task CPU and memory usage, read from what the kernel or the Docker engine records:
//! the task's cgroup (v2 or v1), its process group in `/proc` when the agent runs under
//! rlimits, or the engine's one-shot container stats. [`UsageSampler`] reads every live task
//! every few seconds and keeps the latest sample in the [`TaskTable`]; `/monitor/statistics`
//! and the per-task metrics show that sample.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::container::{MemoryStatsStats, StatsOptions};
use bollard::Docker;
use futures::StreamExt;
use serde::Serialize;

use crate::checkpoint::{ProcessStat, RuntimeCheckpoint};
use crate::limits::{TaskCgroup, TaskLimits};
use crate::tasks::{TaskKey, TaskTable};

/// The kernel reports `/proc/<pid>/stat` and `cpuacct.stat` times in USER_HZ, which is 100
/// on every Linux ABI whatever the kernel's own tick rate.
const USER_HZ: f64 = 100.0;
/// cgroup v1 says "no limit" with a huge page-aligned number.
const UNLIMITED_V1: u64 = 1 << 62;
const MEBIBYTE: u64 = 1024 * 1024;
/// One task's stats may not hold up the others for longer.
const DOCKER_STATS_TIMEOUT: Duration = Duration::from_secs(5);

/// One reading of one task, with the limits it runs under: the fields of Mesos's
/// `ResourceStatistics` that Corral fills.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct UsageSample {
    /// Seconds since the epoch when it was read.
    pub timestamp: f64,
    pub cpus_user_time_secs: f64,
    pub cpus_system_time_secs: f64,
    /// The task's `cpus`; absent when it asked for none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus_limit: Option<f64>,
    /// Anonymous memory: what the task itself holds, without the page cache.
    pub mem_rss_bytes: u64,
    /// Everything charged to the task, page cache included; absent under rlimits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_total_bytes: Option<u64>,
    /// The enforced limit, else the task's `mem`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_limit_bytes: Option<u64>,
}

/// CPU seconds used.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTimes {
    pub user_secs: f64,
    pub system_secs: f64,
}

/// What one source says about a task, before its resources fill the gaps.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Reading {
    /// Absent for a cgroup v1 without cpuacct: the process group says instead.
    pub cpu: Option<CpuTimes>,
    pub rss_bytes: u64,
    pub total_bytes: Option<u64>,
    pub limit_bytes: Option<u64>,
}

impl Reading {
    fn into_sample(self, limits: &TaskLimits, timestamp: f64) -> UsageSample {
        let cpu = self.cpu.unwrap_or_default();
        UsageSample {
            timestamp,
            cpus_user_time_secs: cpu.user_secs,
            cpus_system_time_secs: cpu.system_secs,
            cpus_limit: limits.cpus,
            mem_rss_bytes: self.rss_bytes,
            mem_total_bytes: self.total_bytes,
            mem_limit_bytes: self.limit_bytes.or(limits.mem_mib.map(|mib| mib * MEBIBYTE)),
        }
    }
}

/// The value of `key` in a flat-keyed cgroup file (`cpu.stat`, `memory.stat`).
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}

/// cgroup v2 `cpu.stat`: `user_usec` and `system_usec`.
pub fn cpu_stat_v2(text: &str) -> Option<CpuTimes> {
    Some(CpuTimes {
        user_secs: keyed_value(text, "user_usec")? as f64 / 1e6,
        system_secs: keyed_value(text, "system_usec")? as f64 / 1e6,
    })
}

/// cgroup v1 `cpuacct.stat`: `user` and `system` in USER_HZ ticks.
pub fn cpuacct_stat_v1(text: &str) -> Option<CpuTimes> {
    Some(CpuTimes {
        user_secs: keyed_value(text, "user")? as f64 / USER_HZ,
        system_secs: keyed_value(text, "system")? as f64 / USER_HZ,
    })
}

/// A memory limit file (`memory.max`, `memory.limit_in_bytes`): `None` when unlimited.
pub fn memory_limit(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return None;
    }
    text.parse().ok().filter(|&bytes| bytes < UNLIMITED_V1)
}

fn read_text(path: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

fn read_number(path: &Path) -> Option<u64> {
    read_text(path).ok()?.trim().parse().ok()
}

/// Reads the task's cgroup. An error means the cgroup is gone or unreadable.
pub fn read_cgroup(cgroup: &TaskCgroup) -> std::io::Result<Reading> {
    match cgroup {
        TaskCgroup::V2 { dir } => {
            let cpu = cpu_stat_v2(&read_text(&dir.join("cpu.stat"))?);
            let memory_stat = read_text(&dir.join("memory.stat"))?;
            let total_bytes = read_number(&dir.join("memory.current"));
            Ok(Reading {
                cpu,
                rss_bytes: keyed_value(&memory_stat, "anon").or(total_bytes).unwrap_or(0),
                total_bytes,
                limit_bytes: read_text(&dir.join("memory.max")).ok().and_then(|t| memory_limit(&t)),
            })
        }
        TaskCgroup::V1 { memory_dir, cpuacct_dir, .. } => {
            let cpu = match cpuacct_dir {
                Some(dir) => match (
                    read_number(&dir.join("cpuacct.usage_user")),
                    read_number(&dir.join("cpuacct.usage_sys")),
                ) {
                    (Some(user_nanos), Some(system_nanos)) => Some(CpuTimes {
                        user_secs: user_nanos as f64 / 1e9,
                        system_secs: system_nanos as f64 / 1e9,
                    }),
                    // Older kernels have only the tick counts.
                    _ => cpuacct_stat_v1(&read_text(&dir.join("cpuacct.stat"))?),
                },
                None => None,
            };
            let memory_stat = read_text(&memory_dir.join("memory.stat"))?;
            Ok(Reading {
                cpu,
                rss_bytes: keyed_value(&memory_stat, "total_rss")
                    .or_else(|| keyed_value(&memory_stat, "rss"))
                    .unwrap_or(0),
                total_bytes: read_number(&memory_dir.join("memory.usage_in_bytes")),
                limit_bytes: read_text(&memory_dir.join("memory.limit_in_bytes"))
                    .ok()
                    .and_then(|text| memory_limit(&text)),
            })
        }
    }
}

/// CPU time and resident memory of whole process groups, from one pass over `/proc`.
pub fn read_process_groups(groups: &BTreeSet<i32>) -> BTreeMap<i32, Reading> {
    let mut readings: BTreeMap<i32, Reading> = BTreeMap::new();
    if groups.is_empty() {
        return readings;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else { return readings };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        let Some(stat) = ProcessStat::read(pid) else { continue };
        if !groups.contains(&stat.process_group) || !stat.is_alive() {
            continue;
        }
        let reading = readings.entry(stat.process_group).or_default();
        let cpu = reading.cpu.get_or_insert_with(CpuTimes::default);
        cpu.user_secs += stat.user_ticks as f64 / USER_HZ;
        cpu.system_secs += stat.system_ticks as f64 / USER_HZ;
        reading.rss_bytes += resident_bytes(pid).unwrap_or(0);
    }
    readings
}

/// `VmRSS` of `/proc/<pid>/status`, which the kernel gives in kB whatever the page size.
fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

/// The engine's one-shot stats of a container.
pub async fn read_docker(docker: &Docker, container_id: &str) -> Result<Reading, String> {
    let options = StatsOptions { stream: false, one_shot: true };
    let mut stream = docker.stats(container_id, Some(options));
    let stats = match tokio::time::timeout(DOCKER_STATS_TIMEOUT, stream.next()).await {
        Err(_) => return Err(format!("no stats within {DOCKER_STATS_TIMEOUT:?}")),
        Ok(None) => return Err("the engine sent no stats".to_owned()),
        Ok(Some(Err(error))) => return Err(error.to_string()),
        Ok(Some(Ok(stats))) => stats,
    };
    let usage = stats.cpu_stats.cpu_usage;
    let memory = stats.memory_stats;
    let rss_bytes = match memory.stats {
        Some(MemoryStatsStats::V1(v1)) => v1.total_rss,
        Some(MemoryStatsStats::V2(v2)) => v2.anon,
        None => memory.usage.unwrap_or(0),
    };
    Ok(Reading {
        // The engine reports CPU times in nanoseconds.
        cpu: Some(CpuTimes {
            user_secs: usage.usage_in_usermode as f64 / 1e9,
            system_secs: usage.usage_in_kernelmode as f64 / 1e9,
        }),
        rss_bytes,
        total_bytes: memory.usage,
        limit_bytes: memory.limit.filter(|&bytes| bytes < UNLIMITED_V1),
    })
}

/// Where one live task's usage is read from.
enum Source {
    /// The wrapper's pid and start time identify the process group; the cgroup, when there
    /// is one, is read first.
    Process {
        cgroup: Option<TaskCgroup>,
        pid: u32,
        start_time: u64,
    },
    Docker {
        container_id: String,
    },
}

/// Reads every live task every `interval` and keeps the latest sample in the table.
pub struct UsageSampler {
    tasks: Arc<TaskTable>,
    docker: Option<Docker>,
    interval: Duration,
}

impl UsageSampler {
    pub fn new(tasks: Arc<TaskTable>, docker: Option<Docker>, interval: Duration) -> UsageSampler {
        UsageSampler { tasks, docker, interval }
    }

    pub async fn run(self) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.sample_once().await;
        }
    }

    /// One round over every live task whose container is known.
    pub async fn sample_once(&self) {
        let mut process_tasks = Vec::new();
        let mut docker_tasks = Vec::new();
        for record in self.tasks.live() {
            let limits = TaskLimits::from_resources(&record.info.resources);
            let source = match &record.runtime {
                Some(RuntimeCheckpoint::Process { pid, start_time, cgroup, .. }) => {
                    Source::Process { cgroup: cgroup.clone(), pid: *pid, start_time: *start_time }
                }
                Some(RuntimeCheckpoint::Docker { container_id, .. }) => {
                    Source::Docker { container_id: container_id.clone() }
                }
                None => continue,
            };
            match source {
                Source::Process { .. } => process_tasks.push((record.key(), source, limits)),
                Source::Docker { .. } => docker_tasks.push((record.key(), source, limits)),
            }
        }
        let process_samples =
            tokio::task::spawn_blocking(move || sample_process_tasks(process_tasks)).await;
        match process_samples {
            Ok(samples) => {
                for (key, sample) in samples {
                    self.tasks.set_usage(&key, sample);
                }
            }
            Err(error) => tracing::error!(%error, "reading process task usage failed"),
        }
        let Some(docker) = &self.docker else { return };
        let readings = docker_tasks.into_iter().map(|(key, source, limits)| async move {
            let Source::Docker { container_id } = source else { return None };
            match read_docker(docker, &container_id).await {
                Ok(reading) => Some((key, reading.into_sample(&limits, now_secs()))),
                Err(error) => {
                    tracing::debug!(task = %key.1, %error, "no Docker stats");
                    None
                }
            }
        });
        for (key, sample) in futures::future::join_all(readings).await.into_iter().flatten() {
            self.tasks.set_usage(&key, sample);
        }
    }
}

/// Blocking: cgroup files first, then one `/proc` pass for what cgroups do not say.
fn sample_process_tasks(tasks: Vec<(TaskKey, Source, TaskLimits)>) -> Vec<(TaskKey, UsageSample)> {
    let mut readings = Vec::new();
    let mut groups = BTreeSet::new();
    for (key, source, limits) in tasks {
        let Source::Process { cgroup, pid, start_time } = source else { continue };
        // A pid names this task's group only while its leader is the wrapper that started.
        let leader_alive = ProcessStat::read(pid)
            .is_some_and(|stat| stat.is_alive() && stat.start_time == start_time);
        let from_cgroup = cgroup.as_ref().and_then(|cgroup| read_cgroup(cgroup).ok());
        let needs_group = from_cgroup.is_none_or(|reading| reading.cpu.is_none());
        if needs_group && !leader_alive {
            continue;
        }
        if needs_group {
            groups.insert(pid as i32);
        }
        readings.push((key, pid as i32, from_cgroup, limits));
    }
    let by_group = read_process_groups(&groups);
    let timestamp = now_secs();
    readings
        .into_iter()
        .filter_map(|(key, group, from_cgroup, limits)| {
            let from_group = by_group.get(&group).copied();
            let reading = match (from_cgroup, from_group) {
                (Some(cgroup), Some(group)) => Reading { cpu: group.cpu, ..cgroup },
                (Some(cgroup), None) => cgroup,
                (None, Some(group)) => group,
                (None, None) => return None,
            };
            Some((key, reading.into_sample(&limits, timestamp)))
        })
        .collect()
}

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|since| since.as_secs_f64()).unwrap_or(0.0)
}
