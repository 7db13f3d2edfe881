//! The environment Mesos gives a task, and the paths it lives in.

use std::path::{Path, PathBuf};

use corral_state::model::TaskInfo;
use corral_state::{AgentId, FrameworkId, TaskId};

use crate::checkpoint::file_name_for;

/// `work_dir/sandboxes/<framework>/<task>/`, ids escaped for the file system.
pub fn sandbox_dir(work_dir: &Path, framework_id: &FrameworkId, task_id: &TaskId) -> PathBuf {
    work_dir
        .join("sandboxes")
        .join(file_name_for(framework_id.as_str()))
        .join(file_name_for(task_id.as_str()))
}

/// A name that is unique per agent, framework and task and safe as a cgroup or container
/// name: task ids are only unique within their framework.
pub fn container_name(agent_id: &AgentId, framework_id: &FrameworkId, task_id: &TaskId) -> String {
    let raw = format!("corral-{agent_id}-{framework_id}-{task_id}");
    raw.chars()
        .map(
            |c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' },
        )
        .collect()
}

/// Every port of the task's `ports` resource, lowest first.
pub fn task_ports(task: &TaskInfo) -> Vec<u64> {
    task.resources.ranges("ports").as_slice().iter().flat_map(|&(begin, end)| begin..=end).collect()
}

/// `MESOS_*`, `PORT0`…, `PORTS`, `PORT`, then the task's own variables, which win.
pub fn task_environment(
    task: &TaskInfo,
    framework_id: &FrameworkId,
    agent_id: &AgentId,
    sandbox_as_seen_by_task: &str,
) -> Vec<(String, String)> {
    let mut environment = vec![
        ("MESOS_TASK_ID".to_owned(), task.task_id.to_string()),
        ("MESOS_FRAMEWORK_ID".to_owned(), framework_id.to_string()),
        ("MESOS_AGENT_ID".to_owned(), agent_id.to_string()),
        ("MESOS_SANDBOX".to_owned(), sandbox_as_seen_by_task.to_owned()),
        ("MESOS_DIRECTORY".to_owned(), sandbox_as_seen_by_task.to_owned()),
    ];
    let ports = task_ports(task);
    for (index, port) in ports.iter().enumerate() {
        environment.push((format!("PORT{index}"), port.to_string()));
    }
    if let Some(first) = ports.first() {
        environment.push(("PORT".to_owned(), first.to_string()));
        let list: Vec<String> = ports.iter().map(u64::to_string).collect();
        environment.push(("PORTS".to_owned(), list.join(",")));
    }
    if let Some(command) = &task.command {
        environment.extend(command.environment.iter().cloned());
    }
    environment
}
