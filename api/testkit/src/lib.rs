//! What Corral's test suites share: polling with a deadline, a state builder that applies
//! real commands, real `corral master` and `corral agent` processes on loopback, a minimal
//! in-test agent, a framework over the raw scheduler API and the pymesos framework.

pub mod agent;
pub mod agent_process;
pub mod cluster;
pub mod events;
pub mod framework;
pub mod scheduler;
pub mod state;

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
