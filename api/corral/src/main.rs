//! The `corral` binary.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::io::IsTerminal;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use corral_agent::daemon::{AgentConfig, AgentToken, OnStop};
use corral_client::{Follow, LogFile};
use corral_log::network::ClusterSecret;
use corral_log::{JournalRetention, LogConfig, LogTuning, NodeId};
use corral_master::{DnsConfig, LoopIntervals};
use corral_state::model::Settings;

use crate::serve::{run_master, shutdown_signal, MasterSetup};

mod acl;
mod audit;
mod certs;
mod demo;
mod events;
mod members;
mod prometheus;
mod replay;
mod serve;
mod snapshot;
mod task_log;

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
    /// Tasks.
    Task {
        #[command(subcommand)]
        command: TaskCommand,
    },
    /// Every command that touched a task, agent, framework, app, role or operator, oldest
    /// first, with who sent it and what the log decided.
    History(HistoryArgs),
    /// The cluster as it stood right after an index or at a time.
    State(StateArgs),
    /// What changed between two points: agents, frameworks, tasks, apps and roles.
    Diff(DiffArgs),
    /// Why a task or a deployment is where it is.
    Explain(ExplainArgs),
    /// The masters of the cluster: list them, add one, remove one.
    Members {
        #[command(subcommand)]
        command: MembersCommand,
    },
    /// Leadership: hand it to another master.
    Leader {
        #[command(subcommand)]
        command: LeaderCommand,
    },
    /// Backups: save the cluster state to a file, seed a new cluster from one.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Access control: bootstrap, tokens, policies, credentials, the auth mode.
    Acl {
        #[command(subcommand)]
        command: acl::AclCommand,
    },
    /// Makes a test CA and certificates for masters and agents (`--tls-*` flags).
    Certs(certs::CertsArgs),
    /// A load balancer that follows the service catalog: every service port (L4 or HTTP),
    /// virtual hosts and paths on --http-listen, marathon-lb's HAPROXY_* labels.
    Proxy(ProxyArgs),
}

#[derive(Args)]
struct ProxyArgs {
    /// Comma-separated masters (any master answers the catalog); on an error the next one.
    #[arg(long, default_value = "127.0.0.1:5050")]
    master: String,
    /// Serve apps whose HAPROXY_GROUP names one of these (comma-separated); `*` serves all.
    #[arg(long, default_value = "external")]
    group: String,
    /// The HTTP listener for HAPROXY_{n}_VHOST and HAPROXY_{n}_PATH routes; none without it.
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// The address every service port listens on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_ip: std::net::IpAddr,
    /// `GET /_corral/proxy/config` (the routing table and label errors) and `/metrics`.
    #[arg(long, default_value = "127.0.0.1:9090")]
    admin_listen: SocketAddr,
    /// Seconds an open connection to an instance that left the table (failing its health
    /// check, or killed without a kill grace period) may go on before it is closed. A killed
    /// instance with one (`taskKillGracePeriodSeconds`) gets that instead.
    #[arg(long, default_value_t = 30.0)]
    drain_grace: f64,
    /// Threads serving --http-listen, each with its own listener and upstream connections;
    /// one per core when not given.
    #[arg(long)]
    http_threads: Option<std::num::NonZeroUsize>,
}

/// Mutual TLS: all three flags or none.
#[derive(Args)]
struct TlsArgs {
    /// This process's certificate chain (PEM); it must name `master.<cluster>` (masters) or
    /// `agent.<cluster>` (agents) in its subject alternative names. Reloaded when the file
    /// changes and on SIGHUP.
    #[arg(long, requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires_all = ["tls_cert", "tls_ca"])]
    tls_key: Option<PathBuf>,
    /// The cluster's CA (PEM): every master's and agent's certificate must chain to it.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<PathBuf>,
}

impl TlsArgs {
    /// Loads and checks the files, and starts watching them for changes.
    fn load(
        self,
        cluster: &str,
        role: corral_tls::Role,
    ) -> anyhow::Result<Option<corral_tls::Tls>> {
        let (Some(cert), Some(key), Some(ca)) = (self.tls_cert, self.tls_key, self.tls_ca) else {
            return Ok(None);
        };
        let tls = corral_tls::Tls::load(corral_tls::TlsFiles { cert, key, ca }, cluster, role)?;
        tls.watch();
        Ok(Some(tls))
    }
}

/// How a command prints its answer: a table for people, JSON for scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    Table,
    Json,
}

/// Where to ask, and how to print the answer.
#[derive(Args)]
struct AuditOptions {
    /// The master to ask (any master answers from its own journal).
    #[arg(long, default_value = "127.0.0.1:5050")]
    master: String,
    /// Print the JSON the master answered instead of tables.
    #[arg(long)]
    json: bool,
}

/// Which masters to ask, and how to print the answer.
#[derive(Args)]
struct MasterTarget {
    /// Comma-separated masters, tried in turn; a follower redirects to the leader.
    #[arg(long, default_value = "127.0.0.1:5050")]
    master: String,
    /// Print the answer as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct HistoryArgs {
    /// task, agent, framework, app, role or operator.
    #[arg(value_parser = ["task", "agent", "framework", "app", "role", "operator"])]
    kind: String,
    id: String,
    /// From this cursor (`INDEX[-SEQ]`) or RFC 3339 time.
    #[arg(long)]
    from: Option<String>,
    /// Up to this cursor or time.
    #[arg(long)]
    to: Option<String>,
    #[command(flatten)]
    options: AuditOptions,
}

#[derive(Args)]
struct StateArgs {
    /// A log index, or a time (RFC 3339, e.g. 2026-11-30T03:12:00Z); the latest without it.
    #[arg(long)]
    at: Option<String>,
    #[command(flatten)]
    options: AuditOptions,
}

#[derive(Args)]
struct DiffArgs {
    /// A log index or an RFC 3339 time.
    #[arg(long)]
    from: String,
    #[arg(long)]
    to: String,
    #[command(flatten)]
    options: AuditOptions,
}

#[derive(Args)]
struct ExplainArgs {
    /// task or deployment.
    #[arg(value_parser = ["task", "deployment"])]
    kind: String,
    id: String,
    #[command(flatten)]
    options: AuditOptions,
}

impl MasterTarget {
    fn output(&self) -> Output {
        if self.json {
            return Output::Json;
        }
        Output::Table
    }
}

#[derive(Subcommand)]
enum MembersCommand {
    /// Every master: role, address, whether the leader hears it, how far behind it is.
    List {
        #[command(flatten)]
        target: MasterTarget,
    },
    /// Adds the master NODE_ID at ADDRESS (started with an empty --data-dir and no --peers):
    /// it catches up as a learner, then votes.
    Add {
        node_id: NodeId,
        address: String,
        #[command(flatten)]
        target: MasterTarget,
    },
    /// Removes master NODE_ID; refused if the voters left up could not form a majority.
    Remove {
        node_id: NodeId,
        #[command(flatten)]
        target: MasterTarget,
    },
}

#[derive(Subcommand)]
enum TaskCommand {
    /// A task's stdout (or stderr) from its sandbox, read through a master.
    Log {
        /// The task's id (the newest task with it, when several frameworks used it).
        task_id: String,
        #[arg(long, default_value = "127.0.0.1:5050")]
        master: String,
        /// Keep printing as the file grows, until the task has ended.
        #[arg(long)]
        follow: bool,
        /// stderr instead of stdout.
        #[arg(long)]
        stderr: bool,
    },
}

#[derive(Subcommand)]
enum LeaderCommand {
    /// Hands leadership to master --to once it has caught up.
    Transfer {
        #[arg(long)]
        to: NodeId,
        #[command(flatten)]
        target: MasterTarget,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Saves a consistent backup of the cluster state (with its index, term and digest).
    Save {
        file: PathBuf,
        /// Comma-separated masters, tried in turn.
        #[arg(long, default_value = "127.0.0.1:5050")]
        master: String,
    },
    /// Seeds an empty --data-dir from a backup as the only master of a new cluster.
    Restore {
        file: PathBuf,
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        node_id: NodeId,
        /// The address the restored master will listen on (its `corral master --listen`).
        #[arg(long, default_value = "127.0.0.1:5050")]
        listen: String,
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
    /// Prefix of every id the master hands out.
    #[arg(long, default_value = "corral")]
    cluster_id: String,
    /// Also start Prometheus (the `prometheus` binary) scraping the master and the agent,
    /// with grafana/alerts loaded, listening here.
    #[arg(long, num_args = 0..=1, default_missing_value = "127.0.0.1:9090", value_name = "LISTEN")]
    prometheus: Option<String>,
    /// Where the built-in DNS answers (UDP and TCP).
    #[arg(long, default_value = "127.0.0.1:8053")]
    dns_listen: SocketAddr,
    #[command(flatten)]
    dns: DnsArgs,
}

/// The built-in DNS (Mesos-DNS's names).
#[derive(Args)]
struct DnsArgs {
    /// The DNS domain: tasks are `{task}.{framework}.{domain}`.
    #[arg(long, default_value = "mesos")]
    dns_domain: String,
    /// Seconds a DNS answer may be cached.
    #[arg(long, default_value_t = 5)]
    dns_ttl: u32,
}

impl DnsArgs {
    fn config(self, listen: Option<SocketAddr>) -> anyhow::Result<DnsConfig> {
        let domain = self.dns_domain.trim_matches('.').to_ascii_lowercase();
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !domain.split('.').all(label_ok) {
            bail!(
                "--dns-domain {domain:?}: must be dot-separated labels of letters, digits and '-'"
            );
        }
        Ok(DnsConfig { domain, ttl: self.dns_ttl, listen })
    }
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
    /// Seconds between readings of each task's CPU and memory (`/monitor/statistics`).
    #[arg(long, default_value_t = 5.0)]
    usage_interval: f64,
    /// What stopping the agent (SIGINT, SIGTERM) does to its tasks: `leave-tasks` (as Mesos:
    /// they run on, and a restarted agent finds them) or `kill-tasks`.
    #[arg(long, value_enum, default_value_t = OnStopArg::LeaveTasks)]
    on_stop: OnStopArg,
    /// The cluster's id (the masters' `--cluster-id`): with TLS, masters must present a
    /// certificate naming `master.<cluster>` and this agent's must name `agent.<cluster>`.
    #[arg(long, default_value = "corral")]
    cluster_id: String,
    #[command(flatten)]
    tls: TlsArgs,
    /// A file holding this agent's ACL token (`crl_…`), sent to the masters as a Bearer
    /// token; needed once access control is enforced (its principal needs
    /// `register_agents`).
    #[arg(long)]
    token_file: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OnStopArg {
    LeaveTasks,
    KillTasks,
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
    /// Prefix of every id the cluster hands out (agents, frameworks, offers, and through
    /// them container names); every master of a cluster must be given the same one. Read
    /// when the cluster's log starts, ignored afterwards.
    #[arg(long, default_value = "corral")]
    cluster_id: String,
    /// Mesos `--allocation_interval`, in seconds.
    #[arg(long, default_value_t = 1.0)]
    allocation_interval: f64,
    /// Seconds a follower waits without hearing from a leader before it stands for election
    /// (a random time between this and 5/3 of it; etcd's `--election-timeout`). Every master
    /// of a cluster should be given the same. Raise it where masters share overloaded
    /// machines; a lower one fails over sooner.
    #[arg(long, default_value_t = 0.3)]
    election_timeout: f64,
    /// How often the leader decides time-based transitions, in seconds.
    #[arg(long, default_value_t = 1.0)]
    tick_interval: f64,
    /// Seconds between HEARTBEAT events on scheduler streams (Mesos: 15).
    #[arg(long, default_value_t = 15.0)]
    heartbeat_interval: f64,
    /// Seconds between the leader's readings of agents' task usage (the autoscaler's input).
    #[arg(long, default_value_t = 5.0)]
    usage_interval: f64,
    /// Keep at most this many log entries in the event journal (default: keep everything).
    #[arg(long)]
    journal_max_entries: Option<u64>,
    /// Drop journal entries older than this many seconds (default: keep everything).
    #[arg(long)]
    journal_max_age: Option<f64>,
    #[command(flatten)]
    tls: TlsArgs,
    /// With TLS on `--listen`, also serve plain HTTP here, for clients with no TLS
    /// (pymesos). Raft and the agent-facing API are not served on it.
    #[arg(long, requires = "tls_cert")]
    plain_listen: Option<String>,
    /// Every master's `--plain-listen`, `1=127.0.0.1:6050,2=127.0.0.1:6052`, by the ids of
    /// `--peers`: where a follower's plain listener redirects to the leader.
    #[arg(long, requires_all = ["plain_listen", "peers"])]
    plain_peers: Option<String>,
    /// Event streams (scheduler, operator, native, Marathon, agent) one client address may
    /// hold open at once; one more is refused with 429.
    #[arg(long, default_value_t = corral_master::DEFAULT_MAX_CLIENT_STREAMS)]
    max_client_streams: usize,
    /// Serve the built-in DNS here (UDP and TCP); off when absent.
    #[arg(long)]
    dns_listen: Option<SocketAddr>,
    #[command(flatten)]
    dns: DnsArgs,
    /// A file holding a token (`crl_<accessor>_<secret>`): when this master leads a cluster
    /// whose access control was never bootstrapped, it bootstraps it with this token as the
    /// management token. Give every master the same file; later it changes nothing.
    #[arg(long)]
    bootstrap_token_file: Option<PathBuf>,
    /// A file holding the cluster's secret (at least 32 characters, e.g. `openssl rand -hex
    /// 32`): every master of the cluster is given the same one. Raft requests between masters
    /// are signed with it and refused (401) without it, with or without TLS. Without it and
    /// without TLS, anyone who reaches `--listen` can speak Raft to this master.
    #[arg(long)]
    cluster_secret_file: Option<PathBuf>,
}

#[derive(Args)]
struct ReplayArgs {
    /// A master's --data-dir (the master must be stopped: sled locks its files).
    #[arg(long)]
    data_dir: PathBuf,
    /// Stop after this log index.
    #[arg(long, conflicts_with = "at")]
    to: Option<u64>,
    /// Stop after the last entry stamped at or before this time (RFC 3339 or seconds since
    /// the epoch).
    #[arg(long)]
    at: Option<String>,
    /// Also check the journal's hash chain (naming the first altered index) and replay to
    /// the master's snapshot, requiring the same state digest.
    #[arg(long)]
    verify: bool,
    /// Print the state document (the v0 `/master/state` shape, as `GET /corral/v1/state`
    /// answers) instead of a summary.
    #[arg(long)]
    json: bool,
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

fn audit_client(options: &AuditOptions) -> anyhow::Result<(corral_client::AuditClient, Output)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;
    let output = if options.json { Output::Json } else { Output::Table };
    Ok((corral_client::AuditClient::new(http, &options.master), output))
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    if !value.is_finite() || value <= 0.0 {
        bail!("--{flag} must be a positive number of seconds, got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

/// `--plain-peers` keyed by each master's `--listen` address (what the log names it by).
fn plain_addresses(
    peers: &BTreeMap<NodeId, String>,
    text: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let plain = LogConfig::parse_peers(text).context("--plain-peers")?;
    plain
        .into_iter()
        .map(|(node_id, plain)| match peers.get(&node_id) {
            Some(address) => Ok((address.clone(), plain)),
            None => bail!("--plain-peers names master {node_id}, which --peers does not list"),
        })
        .collect()
}

fn bootstrap_token(path: &std::path::Path) -> anyhow::Result<corral_master::BootstrapToken> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --bootstrap-token-file {}", path.display()))?;
    if let Ok(metadata) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "--bootstrap-token-file may be read by other users than its owner (chmod 600 it)");
        }
    }
    corral_master::BootstrapToken::parse(&text)
        .map_err(|problem| anyhow::anyhow!("--bootstrap-token-file {}: {problem}", path.display()))
}

fn cluster_secret(path: &std::path::Path) -> anyhow::Result<ClusterSecret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --cluster-secret-file {}", path.display()))?;
    if let Ok(metadata) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "--cluster-secret-file may be read by other users than its owner (chmod 600 it)");
        }
    }
    ClusterSecret::from_text(&text)
        .map_err(|problem| anyhow::anyhow!("--cluster-secret-file {}: {problem}", path.display()))
}

/// `corral dev`'s cluster secret: made once in its data directory (mode 0600), so a dev
/// master's Raft routes answer only itself.
fn dev_cluster_secret(data_dir: &std::path::Path) -> anyhow::Result<ClusterSecret> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = data_dir.join("cluster-secret");
    if !path.exists() {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let text = format!("{}{}\n", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    cluster_secret(&path)
}

fn cluster_id(id: String) -> anyhow::Result<String> {
    match Settings::check_cluster_id(&id) {
        Ok(()) => Ok(id),
        Err(problem) => bail!("--cluster-id {problem}, got '{id}'"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Colour only for a terminal: logs sent to a file or a pipe stay plain text.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        CliCommand::Dev(args) => dev(args).await,
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
            config.usage_interval = seconds(args.usage_interval, "usage-interval")?;
            config.on_stop = match args.on_stop {
                OnStopArg::LeaveTasks => OnStop::LeaveTasksRunning,
                OnStopArg::KillTasks => OnStop::KillTasks,
            };
            let cluster = cluster_id(args.cluster_id)?;
            config.tls = args.tls.load(&cluster, corral_tls::Role::Agent)?;
            if let Some(path) = &args.token_file {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --token-file {}", path.display()))?;
                let token = AgentToken::new(&text).map_err(|problem| {
                    anyhow::anyhow!("--token-file {}: {problem}", path.display())
                })?;
                config.token = Some(token);
            }
            // Agent errors already name their cause; anyhow's chain would say it twice.
            corral_agent::daemon::run_until(config, shutdown_signal())
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))
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
                usage: seconds(args.usage_interval, "usage-interval")?,
            };
            let retention = JournalRetention {
                max_age: args
                    .journal_max_age
                    .map(|age| seconds(age, "journal-max-age"))
                    .transpose()?,
                max_indexes: args.journal_max_entries,
            };
            if args.max_client_streams == 0 {
                bail!("--max-client-streams must be at least 1");
            }
            let plain_addresses = match &args.plain_peers {
                Some(text) => plain_addresses(&peers, text)?,
                None => BTreeMap::new(),
            };
            let cluster = cluster_id(args.cluster_id)?;
            let serving = corral_master::Serving {
                tls: args.tls.load(&cluster, corral_tls::Role::Master)?,
                cluster_secret: args
                    .cluster_secret_file
                    .as_deref()
                    .map(cluster_secret)
                    .transpose()?,
                plain_addresses,
                max_client_streams: args.max_client_streams,
                leader_timeout: corral_master::DEFAULT_LEADER_TIMEOUT,
            };
            let setup = MasterSetup {
                node_id: args.node_id,
                listen: args.listen,
                data_dir: args.data_dir,
                peers,
                cluster_id: cluster,
                tuning: LogTuning::with_election_timeout(seconds(
                    args.election_timeout,
                    "election-timeout",
                )?)
                .map_err(|error| anyhow::anyhow!("--election-timeout: {error}"))?,
                intervals,
                retention,
                serving,
                plain_listen: args.plain_listen,
                dns: args.dns.config(args.dns_listen)?,
                bootstrap_token: args
                    .bootstrap_token_file
                    .as_deref()
                    .map(bootstrap_token)
                    .transpose()?,
            };
            run_master(setup, shutdown_signal()).await
        }
        CliCommand::Replay(args) => replay::run(&args),
        CliCommand::Events { command: EventsCommand::Tail { master, from, topic } } => {
            events::tail(&master, from.as_deref(), topic.as_deref()).await
        }
        CliCommand::Task { command: TaskCommand::Log { task_id, master, follow, stderr } } => {
            let file = if stderr { LogFile::Stderr } else { LogFile::Stdout };
            let follow = if follow {
                Follow::UntilTaskEnds { poll: Duration::from_millis(500) }
            } else {
                Follow::No
            };
            task_log::print(&master, &task_id, file, follow).await
        }
        CliCommand::History(args) => {
            let (client, output) = audit_client(&args.options)?;
            let range = (args.from.as_deref(), args.to.as_deref());
            audit::history(&client, &args.kind, &args.id, range, output).await
        }
        CliCommand::State(args) => {
            let (client, output) = audit_client(&args.options)?;
            audit::state(&client, args.at.as_deref(), output).await
        }
        CliCommand::Diff(args) => {
            let (client, output) = audit_client(&args.options)?;
            audit::diff(&client, &args.from, &args.to, output).await
        }
        CliCommand::Explain(args) => {
            let (client, output) = audit_client(&args.options)?;
            let what = match args.kind.as_str() {
                "task" => audit::ExplainWhat::Task(&args.id),
                _ => audit::ExplainWhat::Deployment(&args.id),
            };
            audit::explain(&client, what, output).await
        }
        CliCommand::Members { command } => match command {
            MembersCommand::List { target } => members::list(&target.master, target.output()).await,
            MembersCommand::Add { node_id, address, target } => {
                members::add(&target.master, node_id, &address, target.output()).await
            }
            MembersCommand::Remove { node_id, target } => {
                members::remove(&target.master, node_id, target.output()).await
            }
        },
        CliCommand::Leader { command: LeaderCommand::Transfer { to, target } } => {
            members::transfer(&target.master, to, target.output()).await
        }
        CliCommand::Snapshot { command } => match command {
            SnapshotCommand::Save { file, master } => snapshot::save(&master, &file).await,
            SnapshotCommand::Restore { file, data_dir, node_id, listen } => {
                snapshot::restore(&file, &data_dir, node_id, &listen).await
            }
        },
        CliCommand::Acl { command } => acl::run(command).await,
        CliCommand::Certs(args) => certs::run(&args),
        CliCommand::Proxy(args) => {
            let masters = args
                .master
                .split(',')
                .map(str::trim)
                .filter(|master| !master.is_empty())
                .map(|master| {
                    if master.starts_with("http://") || master.starts_with("https://") {
                        return master.trim_end_matches('/').to_owned();
                    }
                    format!("http://{master}")
                })
                .collect();
            let groups = corral_proxy::table::Groups::parse(&args.group)
                .map_err(|problem| anyhow::anyhow!("--group {problem}"))?;
            let config = corral_proxy::run::Config {
                masters,
                groups,
                http_listen: args.http_listen,
                bind_ip: args.bind_ip,
                admin_listen: Some(args.admin_listen),
                drain_grace: seconds(args.drain_grace, "drain-grace")?,
                http_threads: match args.http_threads {
                    Some(threads) => threads,
                    None => std::thread::available_parallelism()
                        .context("counting the cores for --http-threads")?,
                },
            };
            corral_proxy::run::run(config, shutdown_signal()).await
        }
    }
}

/// `corral dev`: one master (a single-member Raft cluster) and one agent in this process.
/// Stopping it (Ctrl-C, SIGTERM) kills the tasks it ran, and removes its data unless
/// `--data-dir` named where to keep it.
async fn dev(args: DevArgs) -> anyhow::Result<()> {
    let dns_config = args.dns.config(Some(args.dns_listen))?;
    let (data_dir, keep_data) = match args.data_dir {
        Some(directory) => (directory, true),
        None => (std::env::temp_dir().join(format!("corral-dev-{}", std::process::id())), false),
    };
    let agent_work_dir = data_dir.join("agent");
    let sandboxes = agent_work_dir.join("sandboxes");
    println!(
        "corral dev: master on http://{} and one agent, data in {}",
        args.listen,
        data_dir.display()
    );
    println!("corral dev: state:  curl http://{}/master/state", args.listen);
    println!("corral dev: events: curl 'http://{}/corral/v1/events?format=ndjson'", args.listen);
    println!("corral dev: task sandboxes (stdout, stderr) under {}", sandboxes.display());
    println!(
        "corral dev: DNS: dig @{} -p {} leader.{}",
        args.dns_listen.ip(),
        args.dns_listen.port(),
        dns_config.domain
    );
    let mut agent_config = AgentConfig::new(vec![args.listen.clone()], agent_work_dir);
    agent_config.listen = args.agent_listen.clone();
    agent_config.on_stop = OnStop::KillTasks;
    let (stop_agent, agent_stop) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(async move {
        let stop = async move {
            let _ = agent_stop.await;
        };
        if let Err(error) = corral_agent::daemon::run_until(agent_config, stop).await {
            tracing::error!(%error, "the dev agent stopped");
        }
    });
    let prometheus = match &args.prometheus {
        Some(listen) => {
            let child = prometheus::start(
                &data_dir.join("prometheus"),
                listen,
                &args.listen,
                &args.agent_listen,
                &args.cluster_id,
            )?;
            println!(
                "corral dev: prometheus on http://{listen} (dashboards: grafana/, see README)"
            );
            Some(child)
        }
        None => None,
    };
    if args.demo {
        let master = args.listen.clone();
        tokio::spawn(async move {
            if let Err(error) = demo::run(&master).await {
                tracing::error!(error = format!("{error:#}"), "the demo framework stopped");
            }
        });
    }
    // The agent stops first, while its master still runs to hear the tasks end.
    let stop = async move {
        shutdown_signal().await;
        println!("corral dev: stopping: killing the tasks it started");
        let _ = stop_agent.send(());
        if let Err(error) = agent.await {
            tracing::error!(%error, "the dev agent did not stop cleanly");
        }
    };
    let setup = MasterSetup {
        node_id: 1,
        listen: args.listen.clone(),
        data_dir: data_dir.clone(),
        peers: BTreeMap::from([(1, args.listen)]),
        cluster_id: cluster_id(args.cluster_id)?,
        tuning: LogTuning::default(),
        intervals: LoopIntervals::default(),
        retention: JournalRetention::KEEP_ALL,
        // Plain HTTP and access control off, but Raft answers only this master.
        serving: corral_master::Serving {
            cluster_secret: Some(dev_cluster_secret(&data_dir)?),
            ..corral_master::Serving::default()
        },
        plain_listen: None,
        dns: dns_config,
        bootstrap_token: None,
    };
    run_master(setup, stop).await?;
    if let Some(mut child) = prometheus {
        child.kill().await.context("cannot stop prometheus")?;
    }
    if keep_data {
        println!("corral dev: stopped; data and sandboxes kept in {}", data_dir.display());
        return Ok(());
    }
    std::fs::remove_dir_all(&data_dir)
        .with_context(|| format!("cannot remove {}", data_dir.display()))?;
    println!(
        "corral dev: stopped; removed {} (the sandboxes were under {})",
        data_dir.display(),
        sandboxes.display()
    );
    Ok(())
}
