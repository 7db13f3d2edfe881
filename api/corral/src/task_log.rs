//! `corral task log TASK_ID [--follow] [--stderr]`: a task's stdout or stderr on standard
//! output, read through a master (its proxy to the task's agent), so no shell on the task's
//! machine is needed.

use std::io::Write;

use anyhow::Context;
use corral_client::{find_sandbox, read_log, Follow, LogFile};

pub(crate) async fn print(
    master: &str,
    task_id: &str,
    file: LogFile,
    follow: Follow,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let sandbox = find_sandbox(&http, master, task_id)
        .await
        .with_context(|| format!("cannot find the sandbox of task '{task_id}'"))?;
    let mut out = std::io::stdout().lock();
    read_log(&http, master, &sandbox, file, follow, |bytes| {
        out.write_all(bytes)?;
        out.flush()
    })
    .await
    .with_context(|| format!("cannot read the log of task '{task_id}'"))?;
    Ok(())
}
