//! A task's stdout or stderr read through a master, as `mesos task log` / `dcos task log`
//! do: the master's `/master/tasks` names the task's agent and framework, the agent's
//! `/state` (through the master's `/agent/{id}/...` proxy) names its sandbox, and
//! `/files/read` returns the file a page at a time from an offset, so following it is
//! asking again from where the last page ended.

use std::time::Duration;

use serde_json::Value;

use crate::Error;

/// Which of the sandbox's two logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFile {
    Stdout,
    Stderr,
}

impl LogFile {
    fn name(self) -> &'static str {
        match self {
            LogFile::Stdout => "stdout",
            LogFile::Stderr => "stderr",
        }
    }
}

/// Whether to stop at the end of the file or keep reading as it grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// Print what the file holds now.
    No,
    /// Keep reading, asking again every `poll` once the end is reached, until the task has
    /// ended and everything it wrote has been read.
    UntilTaskEnds { poll: Duration },
}

/// Where a task's files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskSandbox {
    pub task_id: String,
    pub framework_id: String,
    pub agent_id: String,
    /// The sandbox directory on the agent, as its `/state` reports it.
    pub directory: String,
}

/// Bytes asked for per read; the agent answers at most 64 KiB.
const PAGE: u64 = 64 * 1024;

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, Error> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|source| Error::Unreachable { url: url.to_owned(), source })?;
    if !response.status().is_success() {
        return Err(Error::from_response(url, response).await);
    }
    response.json().await.map_err(|error| Error::Protocol {
        url: url.to_owned(),
        problem: format!("the answer is not JSON: {error}"),
    })
}

/// The newest task with this id the master knows (a task id may be reused once a task ended,
/// and by several frameworks): the one whose latest status is the most recent.
async fn find_task(http: &reqwest::Client, master: &str, task_id: &str) -> Result<Value, Error> {
    let url = format!("http://{master}/master/tasks?limit=-1&task_id={}", urlencode(task_id));
    let answer = get_json(http, &url).await?;
    let tasks = answer["tasks"].as_array().ok_or_else(|| Error::Protocol {
        url: url.clone(),
        problem: "the answer has no tasks list".to_owned(),
    })?;
    let latest = |task: &Value| {
        task["statuses"]
            .as_array()
            .and_then(|statuses| statuses.last())
            .and_then(|status| status["timestamp"].as_f64())
            .unwrap_or(0.0)
    };
    tasks
        .iter()
        .max_by(|a, b| latest(a).total_cmp(&latest(b)))
        .cloned()
        .ok_or_else(|| Error::Protocol { url, problem: format!("no task '{task_id}' is known") })
}

/// Finds the task's agent through `master`, then its sandbox in the agent's `/state`.
pub async fn find_sandbox(
    http: &reqwest::Client,
    master: &str,
    task_id: &str,
) -> Result<TaskSandbox, Error> {
    let task = find_task(http, master, task_id).await?;
    let text = |key: &str| {
        task[key].as_str().map(str::to_owned).ok_or_else(|| Error::Protocol {
            url: format!("http://{master}/master/tasks"),
            problem: format!("task '{task_id}' has no {key}"),
        })
    };
    let (framework_id, agent_id) = (text("framework_id")?, text("slave_id")?);
    let url = format!("http://{master}/agent/{}/state", urlencode(&agent_id));
    let state = get_json(http, &url).await?;
    let frameworks = ["frameworks", "completed_frameworks"]
        .into_iter()
        .filter_map(|key| state[key].as_array())
        .flatten()
        .filter(|framework| framework["id"] == framework_id.as_str());
    let executors = frameworks.flat_map(|framework| {
        ["executors", "completed_executors"]
            .into_iter()
            .filter_map(|key| framework[key].as_array())
            .flatten()
    });
    let holds_task = |executor: &&Value| {
        ["tasks", "completed_tasks"]
            .into_iter()
            .filter_map(|key| executor[key].as_array())
            .flatten()
            .any(|task| task["id"] == task_id)
    };
    // The agent lists its newest executors last.
    let directory = executors
        .filter(holds_task)
        .filter_map(|executor| executor["directory"].as_str())
        .next_back()
        .ok_or_else(|| Error::Protocol {
            url,
            problem: format!(
                "agent {agent_id} knows no sandbox of task '{task_id}' (it may have been cleaned up)"
            ),
        })?
        .to_owned();
    Ok(TaskSandbox { task_id: task_id.to_owned(), framework_id, agent_id, directory })
}

/// Whether the master records the task as ended.
async fn task_ended(http: &reqwest::Client, master: &str, task_id: &str) -> Result<bool, Error> {
    let task = find_task(http, master, task_id).await?;
    let state = task["state"].as_str().ok_or_else(|| Error::Protocol {
        url: format!("http://{master}/master/tasks"),
        problem: format!("task '{task_id}' has no state"),
    })?;
    Ok(!matches!(
        state,
        "TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING" | "TASK_KILLING" | "TASK_UNREACHABLE"
    ))
}

/// Reads `file` of the task's sandbox from the start, handing each page to `out`; with
/// `Follow::UntilTaskEnds`, keeps reading as the file grows until the task has ended and
/// the file is read to its end.
pub async fn read_log(
    http: &reqwest::Client,
    master: &str,
    sandbox: &TaskSandbox,
    file: LogFile,
    follow: Follow,
    mut out: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), Error> {
    let path = format!("{}/{}", sandbox.directory, file.name());
    let mut offset: u64 = 0;
    loop {
        let url = format!(
            "http://{master}/agent/{}/files/read?path={}&offset={offset}&length={PAGE}",
            urlencode(&sandbox.agent_id),
            urlencode(&path)
        );
        let page = get_json(http, &url).await?;
        let data = page["data"].as_str().ok_or_else(|| Error::Protocol {
            url: url.clone(),
            problem: "the answer has no data".to_owned(),
        })?;
        if !data.is_empty() {
            out(data.as_bytes()).map_err(|error| Error::Protocol {
                url: url.clone(),
                problem: format!("cannot write the log out: {error}"),
            })?;
            offset += data.len() as u64;
            continue;
        }
        let Follow::UntilTaskEnds { poll } = follow else { return Ok(()) };
        // At the end: done once the task has ended, as it can write nothing more. The
        // file is read once more after that, for what it wrote just before it ended.
        if task_ended(http, master, &sandbox.task_id).await? {
            let last = get_json(http, &url).await?;
            if last["data"].as_str().is_none_or(str::is_empty) {
                return Ok(());
            }
            continue;
        }
        tokio::time::sleep(poll).await;
    }
}

/// Percent-encodes a query or path value.
fn urlencode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                encoded.push(byte as char)
            }
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    encoded
}
