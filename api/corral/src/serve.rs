//! Running a master process: open the log, start the leader's loops, serve every API until
//! SIGINT or SIGTERM, then give open event streams a moment before exiting.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use corral_allocator::AllocatorConfig;
use corral_log::{JournalRetention, LogConfig, LogNode, LogTuning, NodeId};
use corral_master::{DnsConfig, LoopIntervals, Master};

/// How long a stopping master lets open streams finish before it exits.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// What one master process is started with.
pub(crate) struct MasterSetup {
    pub(crate) node_id: NodeId,
    pub(crate) listen: String,
    pub(crate) data_dir: PathBuf,
    pub(crate) peers: BTreeMap<NodeId, String>,
    pub(crate) cluster_id: String,
    /// Raft's timing (`--election-timeout`).
    pub(crate) tuning: LogTuning,
    pub(crate) intervals: LoopIntervals,
    pub(crate) retention: JournalRetention,
    pub(crate) serving: corral_master::Serving,
    /// Plain HTTP beside a TLS `--listen`.
    pub(crate) plain_listen: Option<String>,
    /// The built-in DNS: served when `dns.listen` is set.
    pub(crate) dns: DnsConfig,
    /// `--bootstrap-token-file`: this master bootstraps access control with it when it leads
    /// a cluster that has none.
    pub(crate) bootstrap_token: Option<corral_master::BootstrapToken>,
}

/// Serves until `stop` resolves (or a signal arrives).
pub(crate) async fn run_master(
    setup: MasterSetup,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let MasterSetup {
        node_id,
        listen,
        data_dir,
        peers,
        cluster_id,
        tuning,
        intervals,
        retention,
        serving,
        plain_listen,
        dns,
        bootstrap_token,
    } = setup;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create --data-dir {}", data_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let plain = match &plain_listen {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on --plain-listen {address}"))?,
        ),
        None => None,
    };
    let mut config = LogConfig::new(node_id, &listen, &data_dir);
    config.peers = peers;
    config.tuning = tuning;
    config.retention = retention;
    config.settings.cluster_id = cluster_id;
    config.tls = serving.tls.clone();
    config.cluster_secret = serving.cluster_secret.clone();
    let node = LogNode::open(config).await.context("cannot open the log")?;
    let tls = if serving.tls.is_some() { "on" } else { "off" };
    let cluster_secret = if serving.cluster_secret.is_some() { "on" } else { "off" };
    if serving.tls.is_none() && serving.cluster_secret.is_none() {
        tracing::warn!(%listen, "Raft's routes are open: with neither TLS (--tls-cert) nor --cluster-secret-file, anyone who reaches this address can vote and append as a master, whatever the access control mode");
    }
    let master =
        Master::serving(node, listen.clone(), intervals, AllocatorConfig::default(), serving)?;
    if let Some(address) = dns.listen {
        corral_master::start_dns(master.clone(), address)
            .await
            .with_context(|| format!("cannot serve DNS on --dns-listen {address}"))?;
    }
    master.configure_dns(dns);
    tokio::spawn(corral_master::run_leader_loops(master.clone()));
    if let Some(token) = bootstrap_token {
        tokio::spawn(corral_master::keep_bootstrapped(master.clone(), token));
    }
    tracing::info!(node_id, %listen, tls, cluster_secret, plain_listen = plain_listen.as_deref().unwrap_or("none"), data_dir = %data_dir.display(), "master serving");
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        let _ = stopping.send(true);
    });
    let mut graceful = stopped.clone();
    let mut deadline = stopped;
    let listeners = corral_master::Listeners { main: listener, plain };
    let node = master.node().clone();
    let server = corral_master::serve(master, listeners, async move {
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
    node.shutdown().await.context("cannot stop the log cleanly")?;
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot watch for SIGTERM; only Ctrl-C stops this");
                let _ = interrupt.await;
                return;
            }
        };
    tokio::select! {
        _ = interrupt => {},
        _ = terminate.recv() => {},
    }
}
