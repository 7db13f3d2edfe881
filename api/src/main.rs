//! The `corral` binary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use corral_agent::daemon::AgentConfig;
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
    /// One master and one agent in one process, every API on http://127.0.0.1:5050, data in
    /// a fresh directory.
    Dev(DevArgs),
    /// A master of a 3- or 5-master cluster.
    Master(MasterArgs),
    /// An agent: runs the tasks the masters give it and reports their status.
    Agent(AgentArgs),
    /// Rebuilds the cluster state from a stopped master's journal.
    Replay(ReplayArgs),
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
    /// Where the agent's own address is advertised.
    #[arg(long, default_value = "127.0.0.1:5051")]
    agent_listen: String,
    /// Also launch three `echo hello; sleep 30` tasks from a small built-in framework.
    #[arg(long)]
    demo: bool,
}

#[derive(Args)]
struct AgentArgs {
    /// Comma-separated masters, `127.0.0.1:5050,127.0.0.1:5052`.
    #[arg(long, default_value = "127.0.0.1:5050")]
    master: String,
    /// Where the agent's HTTP API listens (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:5051")]
    listen: String,
    /// The address masters are told; defaults to the address listened on.
    #[arg(long)]
    advertise: Option<String>,
    /// Sandboxes and checkpoints; an agent restarted with the same dir recovers its tasks.
    #[arg(long)]
    work_dir: PathBuf,
    /// Mesos syntax, `cpus:4;mem:8192;disk:10000;ports:[31000-32000]`; replaces the detected
    /// value of each resource named.
    #[arg(long)]
    resources: Option<String>,
    /// Mesos syntax, `rack:a;zone:2`.
    #[arg(long)]
    attributes: Option<String>,
    /// Defaults to the machine's host name.
    #[arg(long)]
    hostname: Option<String>,
    /// Seconds between heartbeats (the masters' agent timeout is 75 s by default).
    #[arg(long, default_value_t = 5.0)]
    heartbeat_interval: f64,
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

#[derive(Args)]
struct ReplayArgs {
    /// A master's --data-dir (the master must be stopped: sled locks its files).
    #[arg(long)]
    data_dir: PathBuf,
    /// Stop after this log index.
    #[arg(long, conflicts_with = "at")]
    to: Option<u64>,
    /// Stop after the last entry stamped at or before this time (seconds since the epoch).
    #[arg(long)]
    at: Option<f64>,
    /// Also replay to the master's snapshot and require the same state digest.
    #[arg(long)]
    verify: bool,
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
    let (stopping, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stopping.send(true);
    });
    let mut graceful = stop.clone();
    let mut deadline = stop;
    let server = serve(master, listener, async move {
        let _ = graceful.wait_for(|stop| *stop).await;
    });
    // Event streams never end by themselves; past the grace period they are cut.
    let grace = async move {
        let _ = deadline.wait_for(|stop| *stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = server => served.context("server failed")?,
        () = grace => tracing::info!("closed the streams still open after {SHUTDOWN_GRACE:?}"),
    }
    Ok(())
}

/// How long a stopping master lets open streams finish before it exits.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

fn run_replay(args: &ReplayArgs) -> anyhow::Result<()> {
    use corral_api::replay::{replay, ReplayUntil, Verification};
    let until = match (args.to, args.at) {
        (Some(index), _) => ReplayUntil::Index(index),
        (None, Some(seconds)) => {
            if !seconds.is_finite() || seconds < 0.0 {
                bail!("--at must be seconds since the epoch, got {seconds}");
            }
            ReplayUntil::Time(corral_state::Timestamp((seconds * 1e9) as u64))
        }
        (None, None) => ReplayUntil::End,
    };
    let verification = if args.verify { Verification::AgainstSnapshot } else { Verification::Skip };
    let report = replay(&args.data_dir, until, verification)?;
    let state = &report.state;
    println!(
        "replayed log indexes {}..={}: {} commands",
        report.first_index, report.last_index, report.commands
    );
    println!(
        "state at {}: {} agents, {} frameworks ({} completed), {} tasks, {} offers",
        state.now(),
        state.agents().len(),
        state.frameworks().len(),
        state.completed_frameworks().len(),
        state.tasks().count(),
        state.offers().len()
    );
    println!("digest {}", report.digest);
    if let Some((index, matches)) = report.verified {
        if !matches {
            bail!(
                "the journal replayed to index {index} does NOT give the master's snapshot state"
            );
        }
        println!(
            "verified: the journal replayed to index {index} gives the master's snapshot state"
        );
    }
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
            let agent_work_dir = data_dir.join("agent");
            println!(
                "corral dev: master on http://{} and one agent, data in {}",
                args.listen,
                data_dir.display()
            );
            println!("corral dev: state:  curl http://{}/master/state", args.listen);
            println!(
                "corral dev: events: curl 'http://{}/corral/v1/events?format=ndjson'",
                args.listen
            );
            println!(
                "corral dev: task sandboxes (stdout, stderr) under {}",
                agent_work_dir.join("sandboxes").display()
            );
            let mut agent_config = AgentConfig::new(vec![args.listen.clone()], agent_work_dir);
            agent_config.listen = args.agent_listen.clone();
            tokio::spawn(async move {
                if let Err(error) = corral_agent::daemon::run(agent_config).await {
                    tracing::error!(%error, "the dev agent stopped");
                }
            });
            if args.demo {
                let master = args.listen.clone();
                tokio::spawn(async move {
                    if let Err(error) = demo::run(&master).await {
                        tracing::error!(error = format!("{error:#}"), "the demo framework stopped");
                    }
                });
            }
            let peers = BTreeMap::from([(1, args.listen.clone())]);
            let intervals = LoopIntervals::default();
            run_master(1, &args.listen, data_dir, peers, intervals, JournalRetention::KEEP_ALL)
                .await
        }
        CliCommand::Agent(args) => {
            let masters: Vec<String> = args
                .master
                .split(',')
                .map(str::trim)
                .filter(|master| !master.is_empty())
                .map(str::to_owned)
                .collect();
            let mut config = AgentConfig::new(masters, args.work_dir);
            config.listen = args.listen;
            config.advertise = args.advertise;
            config.resources = args.resources;
            config.attributes = args.attributes;
            config.hostname = args.hostname;
            config.heartbeat_interval = seconds(args.heartbeat_interval, "heartbeat-interval")?;
            // Agent errors already name their cause; anyhow's chain would say it twice.
            corral_agent::daemon::run(config).await.map_err(|error| anyhow::anyhow!("{error}"))
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
        CliCommand::Replay(args) => run_replay(&args),
        CliCommand::Events { command: EventsCommand::Tail { master, from, topic } } => {
            tail(&master, from, topic).await
        }
    }
}

/// The `corral dev --demo` framework: subscribes through the Mesos v1 scheduler API, launches
/// three small tasks on the first offer and prints their updates, acknowledging each.
mod demo {
    use std::time::Duration;

    use anyhow::{bail, Context};
    use corral_api::mesos::recordio::decode_records;
    use futures::StreamExt;
    use serde_json::{json, Value};

    const TASKS: usize = 3;

    pub async fn run(master: &str) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let url = format!("http://{master}/api/v1/scheduler");
        let subscribe = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
            "user": "root", "name": "corral-dev-demo", "failover_timeout": 3600.0
        }}});
        // The master in this same process may still be electing itself.
        let mut attempts = 0;
        let response = loop {
            attempts += 1;
            match http.post(&url).json(&subscribe).send().await {
                Ok(response) if response.status().is_success() => break response,
                Ok(_) | Err(_) if attempts < 100 => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Ok(response) => bail!("SUBSCRIBE answered {}", response.status()),
                Err(error) => return Err(error).context("cannot reach the master"),
            }
        };
        let stream_id = response
            .headers()
            .get("mesos-stream-id")
            .and_then(|value| value.to_str().ok())
            .context("no Mesos-Stream-Id")?
            .to_owned();
        let mut body = response.bytes_stream();
        let mut buffer = Vec::new();
        let mut framework_id = Value::Null;
        let mut launched = false;
        while let Some(chunk) = body.next().await {
            buffer.extend_from_slice(&chunk.context("scheduler stream broke")?);
            for record in decode_records(&mut buffer).map_err(anyhow::Error::msg)? {
                let event: Value = serde_json::from_slice(&record)?;
                match event["type"].as_str() {
                    Some("SUBSCRIBED") => {
                        framework_id = event["subscribed"]["framework_id"].clone();
                        println!("demo: subscribed as {}", framework_id["value"]);
                    }
                    Some("OFFERS") if !launched => {
                        let offer = &event["offers"]["offers"][0];
                        let tasks: Vec<Value> = (1..=TASKS)
                            .map(|number| {
                                let id = format!("demo-{number}");
                                json!({"name": id, "task_id": {"value": id}, "agent_id": offer["agent_id"],
                                       "command": {"value": "echo hello; sleep 30"},
                                       "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                                                     {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]})
                            })
                            .collect();
                        let accept = json!({"type": "ACCEPT", "framework_id": framework_id, "accept": {
                            "offer_ids": [offer["id"]],
                            "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}]}});
                        http.post(&url)
                            .header("Mesos-Stream-Id", &stream_id)
                            .json(&accept)
                            .send()
                            .await
                            .context("ACCEPT")?;
                        launched = true;
                        println!("demo: launched {TASKS} tasks: echo hello; sleep 30");
                    }
                    Some("UPDATE") => {
                        let status = &event["update"]["status"];
                        println!(
                            "demo: task {} is {}",
                            status["task_id"]["value"].as_str().unwrap_or("?"),
                            status["state"].as_str().unwrap_or("?")
                        );
                        if status["uuid"].is_string() {
                            let acknowledge = json!({"type": "ACKNOWLEDGE", "framework_id": framework_id,
                                "acknowledge": {"agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]}});
                            http.post(&url)
                                .header("Mesos-Stream-Id", &stream_id)
                                .json(&acknowledge)
                                .send()
                                .await
                                .context("ACKNOWLEDGE")?;
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}
