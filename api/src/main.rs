//! The `corral` binary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use corral_allocator::AllocatorConfig;
use corral_api::master::{serve, LoopIntervals, Master};
use corral_log::{JournalRetention, LogConfig, LogNode, NodeId};

#[derive(Parser)]
#[command(
    name = "corral",
    version,
    about = "A cluster resource manager in the family of Apache Mesos"
)]
struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Subcommand)]
enum CliCommand {
    /// One master with every API on http://127.0.0.1:5050 and its data in a fresh directory.
    Dev(DevArgs),
    /// A master of a 3- or 5-master cluster.
    Master(MasterArgs),
    /// Event streams.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
}

#[derive(Args)]
struct DevArgs {
    #[arg(long, default_value = "127.0.0.1:5050")]
    listen: String,
    /// Where to keep the data; a new temporary directory when absent.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Args)]
struct MasterArgs {
    #[arg(long)]
    node_id: NodeId,
    #[arg(long, default_value = "127.0.0.1:5050")]
    listen: String,
    #[arg(long)]
    data_dir: PathBuf,
    /// Initial members, `1=127.0.0.1:5050,2=127.0.0.1:5052,3=127.0.0.1:5054`. Omit to start
    /// empty and wait to be added to a running cluster.
    #[arg(long)]
    peers: Option<String>,
    /// Mesos `--allocation_interval`, in seconds.
    #[arg(long, default_value_t = 1.0)]
    allocation_interval: f64,
    /// How often the leader decides time-based transitions, in seconds.
    #[arg(long, default_value_t = 1.0)]
    tick_interval: f64,
    /// Seconds between HEARTBEAT events on scheduler streams (Mesos: 15).
    #[arg(long, default_value_t = 15.0)]
    heartbeat_interval: f64,
    /// Keep at most this many log entries in the event journal (default: keep everything).
    #[arg(long)]
    journal_max_entries: Option<u64>,
    /// Drop journal entries older than this many seconds (default: keep everything).
    #[arg(long)]
    journal_max_age: Option<f64>,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Prints the event stream as NDJSON, from a cursor, following new events.
    Tail {
        #[arg(long, default_value = "127.0.0.1:5050")]
        master: String,
        /// Resume after this cursor (`index-seq`).
        #[arg(long)]
        from: Option<String>,
        /// Comma-separated topics: agent, framework, offer, task, role, maintenance, cluster.
        #[arg(long)]
        topic: Option<String>,
    },
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    if !value.is_finite() || value <= 0.0 {
        bail!("--{flag} must be a positive number of seconds, got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

async fn run_master(
    node_id: NodeId,
    listen: &str,
    data_dir: PathBuf,
    peers: BTreeMap<NodeId, String>,
    intervals: LoopIntervals,
    retention: JournalRetention,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create --data-dir {}", data_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let mut config = LogConfig::new(node_id, listen, &data_dir);
    config.peers = peers;
    config.retention = retention;
    let node = LogNode::open(config).await.context("cannot open the log")?;
    let master = Master::new(node, listen.to_owned(), intervals, AllocatorConfig::default())?;
    tokio::spawn(corral_api::leader::run(master.clone()));
    tracing::info!(node_id, %listen, data_dir = %data_dir.display(), "master serving");
    serve(master, listener, shutdown_signal()).await.context("server failed")?;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

async fn tail(master: &str, from: Option<String>, topic: Option<String>) -> anyhow::Result<()> {
    use futures::StreamExt;
    let mut url = format!("http://{master}/corral/v1/events?format=ndjson");
    if let Some(from) = from {
        url.push_str(&format!("&from={from}"));
    }
    if let Some(topic) = topic {
        url.push_str(&format!("&topic={topic}"));
    }
    let response = reqwest::get(&url).await.with_context(|| format!("cannot reach {url}"))?;
    if !response.status().is_success() {
        bail!(
            "{} answered {}: {}",
            master,
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("stream broke")?;
        print!("{}", String::from_utf8_lossy(&chunk));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        CliCommand::Dev(args) => {
            let data_dir = match args.data_dir {
                Some(directory) => directory,
                None => std::env::temp_dir().join(format!("corral-dev-{}", std::process::id())),
            };
            println!(
                "corral dev: master on http://{} with data in {}",
                args.listen,
                data_dir.display()
            );
            println!("corral dev: no agent yet (the agent arrives with its own issue); frameworks can subscribe now");
            let peers = BTreeMap::from([(1, args.listen.clone())]);
            let intervals = LoopIntervals::default();
            run_master(1, &args.listen, data_dir, peers, intervals, JournalRetention::KEEP_ALL)
                .await
        }
        CliCommand::Master(args) => {
            let peers = match &args.peers {
                Some(text) => LogConfig::parse_peers(text).context("--peers")?,
                None => BTreeMap::new(),
            };
            if !peers.is_empty() && !peers.contains_key(&args.node_id) {
                bail!("--peers does not list this master's --node-id {}", args.node_id);
            }
            let intervals = LoopIntervals {
                allocation: seconds(args.allocation_interval, "allocation-interval")?,
                tick: seconds(args.tick_interval, "tick-interval")?,
                stream_heartbeat: seconds(args.heartbeat_interval, "heartbeat-interval")?,
            };
            let retention = JournalRetention {
                max_age: args
                    .journal_max_age
                    .map(|age| seconds(age, "journal-max-age"))
                    .transpose()?,
                max_indexes: args.journal_max_entries,
            };
            run_master(args.node_id, &args.listen, args.data_dir, peers, intervals, retention).await
        }
        CliCommand::Events { command: EventsCommand::Tail { master, from, topic } } => {
            tail(&master, from, topic).await
        }
    }
}
