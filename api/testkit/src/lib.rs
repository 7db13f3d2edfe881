//! What Corral's test suites share: polling with a deadline, a state builder that applies
//! real commands, real `corral master` and `corral agent` processes on loopback, a minimal
//! in-test agent, a framework over the raw scheduler API and the pymesos framework.

pub mod agent;
pub mod agent_process;
pub mod cluster;
pub mod events;
pub mod framework;
pub mod ports;
pub mod scheduler;
pub mod state;

pub use ports::free_port;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The repository's root, where `scripts/` and `tests/python/` are.
pub const REPOSITORY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The `corral` binary of the target directory this test runs from. Cargo builds it before
/// the integration tests of the `corral` package; other packages must build it first.
pub fn corral_bin() -> PathBuf {
    let test = std::env::current_exe().expect("the test binary knows its own path");
    // target/<profile>/deps/<test> → target/<profile>/corral
    let profile = test.parent().and_then(|deps| deps.parent()).expect("a test runs from deps/");
    let binary = profile.join("corral");
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build -p corral`",
        binary.display()
    );
    binary
}

/// A cluster id no other test uses, so agents, containers and framework ids of tests that
/// run side by side never share a name.
pub fn unique_cluster_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t{}", &id[..12])
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `corral certs` for `cluster` into `out` (reusing a CA already there).
pub fn make_certs(cluster: &str, out: &std::path::Path, masters: u64, agents: u32) {
    let status = std::process::Command::new(corral_bin())
        .args(["certs", "--cluster", cluster, "--masters", &masters.to_string()])
        .args(["--agents", &agents.to_string()])
        .arg("--out")
        .arg(out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("corral certs runs");
    assert!(status.success(), "corral certs failed");
}

/// The CA in a `corral certs` directory, for a client to trust.
pub fn ca(certs: &std::path::Path) -> reqwest::Certificate {
    let pem = std::fs::read(certs.join("ca.pem")).expect("ca.pem");
    reqwest::Certificate::from_pem(&pem).expect("ca.pem is a PEM certificate")
}

/// A client that trusts the CA in `certs` and presents `<name>.pem` with `<name>-key.pem`.
pub fn tls_client(
    certs: &std::path::Path,
    trusted: &std::path::Path,
    name: &str,
) -> reqwest::Client {
    let mut pem = std::fs::read(certs.join(format!("{name}.pem"))).expect("certificate");
    pem.extend(std::fs::read(certs.join(format!("{name}-key.pem"))).expect("key"));
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca(trusted))
        .identity(reqwest::Identity::from_pem(&pem).expect("a PEM identity"))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}
