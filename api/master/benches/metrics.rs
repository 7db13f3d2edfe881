//! What a `/metrics` scrape costs on a state of 10,000 agents and 100,000 running tasks,
//! built in-process through real commands (no cluster, no HTTP).
//!
//! `cargo bench -p corral-master --bench metrics`
//!
//! - `gauges_under_lock`: the cluster gauges read from the state's running totals and set:
//!   what a scrape holds the state's read lock for.
//! - `render`: the same and the whole Prometheus exposition rendered (what `/metrics` does
//!   besides the log's status and the stream counts).
//! - `copy_and_recount`: the state copied without its request ids and its totals counted
//!   from scratch, roughly what a scrape did before the totals were kept (a copy under the
//!   lock, then a walk of every agent, task and offer).

use std::time::Duration;

use corral_master::Metrics;
use corral_state::Tally;
use criterion::{criterion_group, criterion_main, Criterion};

#[path = "common/large_state.rs"]
mod common;
use common::large_state;

fn benches(c: &mut Criterion) {
    let cluster = large_state();
    let state = &cluster.state;
    let metrics = Metrics::new().expect("the metrics register");
    metrics.set_cluster_gauges(state);
    let text = metrics.render().expect("the metrics render");
    eprintln!("exposition: {} bytes", text.len());
    assert!(text.contains("corral_tasks{state=\"TASK_RUNNING\"} 100000"), "{text}");

    let mut group = c.benchmark_group("metrics_10k_agents_100k_tasks");
    group.sample_size(50).measurement_time(Duration::from_secs(10));
    group.bench_function("gauges_under_lock", |b| b.iter(|| metrics.set_cluster_gauges(state)));
    group.bench_function("render", |b| {
        b.iter(|| {
            metrics.set_cluster_gauges(state);
            std::hint::black_box(metrics.render().expect("the metrics render"))
        })
    });
    group.sample_size(10);
    group.bench_function("copy_and_recount", |b| {
        b.iter(|| {
            let copy = state.without_bookkeeping();
            std::hint::black_box(Tally::recount(&copy))
        })
    });
    group.finish();
}

criterion_group!(metrics, benches);
criterion_main!(metrics);
