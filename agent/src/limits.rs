//! CPU and memory limits for process tasks: cgroup v2, cgroup v1, or rlimits when the
//! machine lets the agent write neither.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The CFS period cgroups measure CPU quotas against, in microseconds.
const CPU_PERIOD_MICROS: u64 = 100_000;
/// How long removing a cgroup whose last process is still exiting is retried, and how often.
const CGROUP_REMOVE_DEADLINE: Duration = Duration::from_millis(200);
const CGROUP_REMOVE_RETRY: Duration = Duration::from_millis(10);
/// The folder under each cgroup hierarchy that holds one cgroup per task.
const CORRAL_CGROUP: &str = "corral";

/// How the agent enforces limits on process tasks; chosen once at start-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitMode {
    /// A unified hierarchy with the memory and cpu controllers enabled under `root`.
    CgroupV2 { root: PathBuf },
    /// Separate v1 hierarchies for memory and cpu, and for cpuacct (CPU time used) when the
    /// machine has it; it may be the cpu hierarchy itself (`cpu,cpuacct`).
    CgroupV1 {
        memory_root: PathBuf,
        cpu_root: PathBuf,
        #[serde(default)]
        cpuacct_root: Option<PathBuf>,
    },
    /// `ulimit -v` in the task's wrapper: address space only, no CPU limit, and a breach
    /// shows as a failed allocation inside the task, not as a kill the agent can see.
    Rlimit,
}

impl fmt::Display for LimitMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitMode::CgroupV2 { root } => write!(f, "cgroup v2 at {}", root.display()),
            LimitMode::CgroupV1 { memory_root, cpu_root, cpuacct_root } => {
                write!(
                    f,
                    "cgroup v1 (memory at {}, cpu at {}",
                    memory_root.display(),
                    cpu_root.display()
                )?;
                match cpuacct_root {
                    Some(root) => write!(f, ", cpuacct at {})", root.display()),
                    None => f.write_str(", no cpuacct: CPU time is read from /proc)"),
                }
            }
            LimitMode::Rlimit => {
                f.write_str("rlimits (address space only; cgroups are not writable here)")
            }
        }
    }
}

impl LimitMode {
    /// Tries cgroup v2, then v1, by creating the agent's own folder in the hierarchy; falls
    /// back to rlimits. Logs the result: operators need to know which applies.
    pub fn detect() -> LimitMode {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mode = detect_v2(&mounts).or_else(|| detect_v1(&mounts)).unwrap_or(LimitMode::Rlimit);
        tracing::info!(limits = %mode, "process task limits");
        mode
    }

    pub fn uses_cgroups(&self) -> bool {
        !matches!(self, LimitMode::Rlimit)
    }
}

struct Mount<'a> {
    path: &'a str,
    fs_type: &'a str,
    options: &'a str,
}

fn mounts(text: &str) -> impl Iterator<Item = Mount<'_>> {
    text.lines().filter_map(|line| {
        let mut fields = line.split_whitespace();
        let _device = fields.next()?;
        let path = fields.next()?;
        let fs_type = fields.next()?;
        let options = fields.next()?;
        Some(Mount { path, fs_type, options })
    })
}

fn detect_v2(mount_table: &str) -> Option<LimitMode> {
    let mount = mounts(mount_table).find(|mount| mount.fs_type == "cgroup2")?;
    let mount_path = Path::new(mount.path);
    let controllers = std::fs::read_to_string(mount_path.join("cgroup.controllers")).ok()?;
    let available: Vec<&str> = controllers.split_whitespace().collect();
    if !(available.contains(&"memory") && available.contains(&"cpu")) {
        return None;
    }
    let root = mount_path.join(CORRAL_CGROUP);
    std::fs::create_dir_all(&root).ok()?;
    // Children of `root` only get the controllers when every ancestor delegates them.
    std::fs::write(mount_path.join("cgroup.subtree_control"), "+memory +cpu").ok()?;
    std::fs::write(root.join("cgroup.subtree_control"), "+memory +cpu").ok()?;
    Some(LimitMode::CgroupV2 { root })
}

fn detect_v1(mount_table: &str) -> Option<LimitMode> {
    let has_option =
        |mount: &Mount<'_>, name: &str| mount.options.split(',').any(|option| option == name);
    let memory = mounts(mount_table)
        .find(|mount| mount.fs_type == "cgroup" && has_option(mount, "memory"))?;
    let cpu =
        mounts(mount_table).find(|mount| mount.fs_type == "cgroup" && has_option(mount, "cpu"))?;
    let memory_root = Path::new(memory.path).join(CORRAL_CGROUP);
    let cpu_root = Path::new(cpu.path).join(CORRAL_CGROUP);
    std::fs::create_dir_all(&memory_root).ok()?;
    std::fs::create_dir_all(&cpu_root).ok()?;
    // Only usage statistics need cpuacct: without it limits still apply.
    let cpuacct_root = mounts(mount_table)
        .find(|mount| mount.fs_type == "cgroup" && has_option(mount, "cpuacct"))
        .map(|mount| Path::new(mount.path).join(CORRAL_CGROUP))
        .filter(|root| std::fs::create_dir_all(root).is_ok());
    Some(LimitMode::CgroupV1 { memory_root, cpu_root, cpuacct_root })
}

/// What one task may use, from its `cpus` and `mem` resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskLimits {
    pub cpus: Option<f64>,
    pub mem_mib: Option<u64>,
}

impl TaskLimits {
    pub fn from_resources(resources: &corral_state::Resources) -> TaskLimits {
        let cpus = resources.scalar("cpus").as_f64();
        let mem = resources.scalar("mem").as_f64();
        TaskLimits {
            cpus: (cpus > 0.0).then_some(cpus),
            mem_mib: (mem > 0.0).then_some(mem.ceil() as u64),
        }
    }

    /// Shell lines the wrapper runs before the task when limits are rlimits.
    pub fn rlimit_shell_lines(&self) -> String {
        match self.mem_mib {
            Some(mib) => format!("ulimit -v {}\n", mib * 1024),
            None => String::new(),
        }
    }
}

/// The cgroup(s) of one task, recorded in its checkpoint so recovery can read them back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskCgroup {
    V2 {
        dir: PathBuf,
    },
    V1 {
        memory_dir: PathBuf,
        cpu_dir: PathBuf,
        /// Absent in checkpoints written before the agent read CPU time from cgroups, and on
        /// machines without a cpuacct hierarchy.
        #[serde(default)]
        cpuacct_dir: Option<PathBuf>,
    },
}

impl TaskCgroup {
    /// Creates the task's cgroup with its limits; `None` in rlimit mode.
    pub fn create(
        mode: &LimitMode,
        name: &str,
        limits: &TaskLimits,
    ) -> std::io::Result<Option<TaskCgroup>> {
        let cgroup = match mode {
            LimitMode::Rlimit => return Ok(None),
            LimitMode::CgroupV2 { root } => TaskCgroup::V2 { dir: root.join(name) },
            LimitMode::CgroupV1 { memory_root, cpu_root, cpuacct_root } => TaskCgroup::V1 {
                memory_dir: memory_root.join(name),
                cpu_dir: cpu_root.join(name),
                cpuacct_dir: cpuacct_root.as_ref().map(|root| root.join(name)),
            },
        };
        for dir in cgroup.dirs() {
            std::fs::create_dir_all(dir)?;
        }
        cgroup.apply(limits)?;
        Ok(Some(cgroup))
    }

    /// Every folder of the cgroup, once each (cpuacct may share the cpu hierarchy).
    fn dirs(&self) -> Vec<&Path> {
        match self {
            TaskCgroup::V2 { dir } => vec![dir],
            TaskCgroup::V1 { memory_dir, cpu_dir, cpuacct_dir } => {
                let mut dirs: Vec<&Path> = vec![memory_dir, cpu_dir];
                if let Some(cpuacct_dir) = cpuacct_dir.as_deref().filter(|dir| dir != cpu_dir) {
                    dirs.push(cpuacct_dir);
                }
                dirs
            }
        }
    }

    fn apply(&self, limits: &TaskLimits) -> std::io::Result<()> {
        let quota = limits.cpus.map(|cpus| ((cpus * CPU_PERIOD_MICROS as f64) as u64).max(1000));
        let memory_bytes = limits.mem_mib.map(|mib| mib * 1024 * 1024);
        match self {
            TaskCgroup::V2 { dir } => {
                if let Some(bytes) = memory_bytes {
                    std::fs::write(dir.join("memory.max"), bytes.to_string())?;
                    // Without this a task could spill into swap instead of being stopped.
                    let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                }
                if let Some(quota) = quota {
                    std::fs::write(dir.join("cpu.max"), format!("{quota} {CPU_PERIOD_MICROS}"))?;
                }
            }
            TaskCgroup::V1 { memory_dir, cpu_dir, .. } => {
                // v1 leaves a process's pages charged where they were when it moves in:
                // without this the wrapper's memory would count nowhere in the task. Older
                // and newer kernels may lack the file; the limit still applies.
                let _ = std::fs::write(memory_dir.join("memory.move_charge_at_immigrate"), "1");
                if let Some(bytes) = memory_bytes {
                    std::fs::write(memory_dir.join("memory.limit_in_bytes"), bytes.to_string())?;
                    let swap_limit = memory_dir.join("memory.memsw.limit_in_bytes");
                    if swap_limit.exists() {
                        std::fs::write(swap_limit, bytes.to_string())?;
                    }
                }
                if let Some(quota) = quota {
                    std::fs::write(
                        cpu_dir.join("cpu.cfs_period_us"),
                        CPU_PERIOD_MICROS.to_string(),
                    )?;
                    std::fs::write(cpu_dir.join("cpu.cfs_quota_us"), quota.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// Moves `pid` (and so everything it starts afterwards) into the cgroup.
    pub fn add_process(&self, pid: u32) -> std::io::Result<()> {
        for dir in self.dirs() {
            std::fs::write(dir.join("cgroup.procs"), pid.to_string())?;
        }
        Ok(())
    }

    /// How many times the kernel's OOM killer killed a process of this cgroup.
    pub fn oom_kills(&self) -> u64 {
        let file = match self {
            TaskCgroup::V2 { dir } => dir.join("memory.events"),
            TaskCgroup::V1 { memory_dir, .. } => memory_dir.join("memory.oom_control"),
        };
        let text = std::fs::read_to_string(file).unwrap_or_default();
        text.lines()
            .filter_map(|line| line.strip_prefix("oom_kill "))
            .find_map(|count| count.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The memory limit read back from the kernel, in bytes.
    pub fn memory_limit_bytes(&self) -> Option<u64> {
        let file = match self {
            TaskCgroup::V2 { dir } => dir.join("memory.max"),
            TaskCgroup::V1 { memory_dir, .. } => memory_dir.join("memory.limit_in_bytes"),
        };
        std::fs::read_to_string(file).ok()?.trim().parse().ok()
    }

    /// The CPU quota and period read back from the kernel, in microseconds.
    pub fn cpu_quota(&self) -> Option<(u64, u64)> {
        match self {
            TaskCgroup::V2 { dir } => {
                let text = std::fs::read_to_string(dir.join("cpu.max")).ok()?;
                let mut fields = text.split_whitespace();
                Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
            }
            TaskCgroup::V1 { cpu_dir, .. } => {
                let read = |name: &str| -> Option<u64> {
                    std::fs::read_to_string(cpu_dir.join(name)).ok()?.trim().parse().ok()
                };
                Some((read("cpu.cfs_quota_us")?, read("cpu.cfs_period_us")?))
            }
        }
    }

    /// The processes in the cgroup now.
    pub fn pids(&self) -> Vec<u32> {
        let procs = self.dirs()[0].join("cgroup.procs");
        let text = std::fs::read_to_string(procs).unwrap_or_default();
        text.lines().filter_map(|line| line.trim().parse().ok()).collect()
    }

    /// SIGKILL to every process in the cgroup: they are all the task's.
    pub fn kill_all(&self) {
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// Removes the cgroup once it is empty; a leftover is logged, not fatal. A process
    /// killed a moment ago may still be leaving the cgroup, so removal is retried for a
    /// while, without holding the runtime's thread.
    pub async fn remove(&self) {
        let deadline = tokio::time::Instant::now() + CGROUP_REMOVE_DEADLINE;
        for dir in self.dirs() {
            loop {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => break,
                    Err(error) if tokio::time::Instant::now() < deadline => {
                        tracing::debug!(cgroup = %dir.display(), %error, "task cgroup busy");
                        tokio::time::sleep(CGROUP_REMOVE_RETRY).await;
                    }
                    Err(error) => {
                        tracing::warn!(cgroup = %dir.display(), %error, "cannot remove task cgroup");
                        break;
                    }
                }
            }
        }
    }
}
