//! A single master's log, serving Raft over HTTP, optionally writing commands as fast as it
//! can while it leads. The crash test kills it with SIGKILL and starts it again on the same
//! directory; the benchmark may use it too.
//!
//! ```text
//! corral-log-node --node-id 1 --listen 127.0.0.1:7001 --data-dir DIR \
//!     --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 [--write PREFIX] [--writers 32]
//! ```
//!
//! With `--write`, every acknowledged command is printed as `acked HOSTNAME` on stdout, after
//! the log acknowledged it and before anything else happens, so a reader knows exactly which
//! commands were acknowledged when the process died.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context};
use corral_log::{LogConfig, LogError, LogNode};
use corral_state::model::{AgentInfo, Attributes};
use corral_state::{Actor, Command, RequestId};

struct Arguments {
    config: LogConfig,
    write_prefix: Option<String>,
    writers: usize,
}

fn parse_arguments() -> anyhow::Result<Arguments> {
    let mut node_id = None;
    let mut listen = None;
    let mut data_dir = None;
    let mut peers = None;
    let mut write_prefix = None;
    let mut writers = 32;
    let mut arguments = std::env::args().skip(1);
    while let Some(flag) = arguments.next() {
        let value = arguments.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--node-id" => node_id = Some(value.parse().context("--node-id")?),
            "--listen" => listen = Some(value),
            "--data-dir" => data_dir = Some(value),
            "--peers" => peers = Some(LogConfig::parse_peers(&value)?),
            "--write" => write_prefix = Some(value),
            "--writers" => writers = value.parse().context("--writers")?,
            other => bail!("unknown flag {other}"),
        }
    }
    let (Some(node_id), Some(listen), Some(data_dir)) = (node_id, listen, data_dir) else {
        bail!("--node-id, --listen and --data-dir are required");
    };
    let mut config = LogConfig::new(node_id, listen, data_dir);
    config.peers = peers.unwrap_or_default();
    Ok(Arguments { config, write_prefix, writers })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = parse_arguments()?;
    let listener = tokio::net::TcpListener::bind(&arguments.config.address)
        .await
        .with_context(|| format!("cannot listen on {}", arguments.config.address))?;
    let node = LogNode::open(arguments.config.clone()).await?;
    let router = node.raft_router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    println!("ready");
    let Some(prefix) = arguments.write_prefix else {
        std::future::pending::<()>().await;
        return Ok(());
    };
    let writers: Vec<_> = (0..arguments.writers)
        .map(|writer| {
            tokio::spawn(write_commands(
                node.clone(),
                format!("{prefix}-{}-{writer}", node.node_id()),
            ))
        })
        .collect();
    for writer in writers {
        writer.await??;
    }
    Ok(())
}

async fn write_commands(node: LogNode, prefix: String) -> anyhow::Result<()> {
    let mut number = 0u64;
    loop {
        if !node.is_leader() {
            // Only the leader writes; followers check back shortly.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let hostname = format!("{prefix}-{number}");
        let command = Command::RegisterAgent {
            info: AgentInfo {
                hostname: hostname.clone(),
                address: "127.0.0.1:5051".to_owned(),
                attributes: Attributes::default(),
            },
            resources: "cpus:1;mem:128".parse()?,
        };
        match node.propose(RequestId::new(hostname.clone()), Actor::Leader, command).await {
            Ok(_) => {
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "acked {hostname}")?;
                stdout.flush()?;
                number += 1;
            }
            // Retried with the same request id: it may have been committed after all.
            Err(LogError::NotLeader { .. } | LogError::Raft(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
}
