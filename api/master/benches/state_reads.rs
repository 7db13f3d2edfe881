//! What the big state reads cost on a state of 10,000 agents and 100,000 running tasks,
//! built in-process through real commands (no cluster, no HTTP).
//!
//! `cargo bench -p corral-master --bench state_reads`
//!
//! - `copy_under_lock`: the copy `/master/state`, `GET_STATE` and `/master/tasks` take of the
//!   state (`ClusterState::without_bookkeeping`) while they hold its read lock: every command
//!   waits for it.
//! - `master_state`, `get_state`: the copy rendered to JSON with the routes' own writers
//!   (`corral_mesos::v0::write_master_state`, `corral_mesos::operator::write_query`), into a
//!   writer that hands on 64 KiB chunks as the response body's does. Done on a blocking
//!   thread, outside the lock.
//! - `get_state_one_thread`: `get_state` with its task list rendered on one thread (the
//!   routes render it on two, `corral_mesos::parallel`).
//! - `master_state_first_chunk`, `get_state_first_chunk`: the same renders stopped when their
//!   first 64 KiB chunk is ready, as when the client leaves: the render's part of the time to
//!   the first byte.

use std::io::{self, Write};
use std::time::Duration;

use corral_mesos::operator::{write_query, write_query_in_blocks, OperatorQuery};
use corral_mesos::v0::write_master_state;
use criterion::{criterion_group, criterion_main, Criterion};

#[path = "common/large_state.rs"]
mod common;
use common::large_state;

/// Bytes gathered before a chunk is handed on, as `written::BodyWriter` does.
const CHUNK: usize = 64 * 1024;

/// Gathers 64 KiB chunks and drops them, counting the bytes: the render's cost without a
/// client at the other end. Writes as `written::BodyWriter` does.
#[derive(Default)]
struct Chunks {
    buffer: Vec<u8>,
    written: usize,
    /// Fail at the first chunk, as a body whose client left does: what it took is the time
    /// to the first byte.
    first_only: bool,
}

impl Write for Chunks {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_all(data)?;
        Ok(data.len())
    }

    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.first_only {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "first chunk done"));
        }
        self.written += self.buffer.len();
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        drop(std::hint::black_box(chunk));
        Ok(())
    }
}

fn about() -> serde_json::Map<String, serde_json::Value> {
    let serde_json::Value::Object(about) = serde_json::json!({
        "id": "master-1",
        "pid": "master@127.0.0.1:5050",
        "hostname": "127.0.0.1",
        "leader": "master@127.0.0.1:5050",
        "leader_info": {"address": "127.0.0.1:5050"},
        "start_time": 1_700_000_000.0,
        "log_index": 1_000_000,
    }) else {
        unreachable!("a JSON object literal")
    };
    about
}

fn benches(c: &mut Criterion) {
    let cluster = large_state();
    let state = &cluster.state;
    let about = about();
    let copy = state.without_bookkeeping();
    let mut sizes = Chunks::default();
    write_master_state(&copy, &about, &mut sizes).expect("the v0 state renders");
    sizes.flush().expect("a sink never fails");
    eprintln!("/master/state: {} bytes", sizes.written);
    let mut sizes = Chunks::default();
    write_query(OperatorQuery::State, &copy, &mut sizes).expect("GET_STATE renders");
    sizes.flush().expect("a sink never fails");
    eprintln!("GET_STATE: {} bytes", sizes.written);

    let mut group = c.benchmark_group("state_reads_10k_agents_100k_tasks");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    group.bench_function("copy_under_lock", |b| {
        b.iter(|| std::hint::black_box(state.without_bookkeeping()))
    });
    group.bench_function("master_state", |b| {
        b.iter(|| {
            let mut out = Chunks::default();
            write_master_state(&copy, &about, &mut out).expect("the v0 state renders");
            out.flush().expect("a sink never fails");
            out.written
        })
    });
    group.bench_function("get_state", |b| {
        b.iter(|| {
            let mut out = Chunks::default();
            write_query(OperatorQuery::State, &copy, &mut out).expect("GET_STATE renders");
            out.flush().expect("a sink never fails");
            out.written
        })
    });
    group.bench_function("get_state_one_thread", |b| {
        b.iter(|| {
            let mut out = Chunks::default();
            write_query_in_blocks(OperatorQuery::State, &copy, usize::MAX, &mut out)
                .expect("GET_STATE renders");
            out.flush().expect("a sink never fails");
            out.written
        })
    });
    group.bench_function("master_state_first_chunk", |b| {
        b.iter(|| {
            let mut out = Chunks { first_only: true, ..Chunks::default() };
            write_master_state(&copy, &about, &mut out).expect_err("stops at the first chunk")
        })
    });
    group.bench_function("get_state_first_chunk", |b| {
        b.iter(|| {
            let mut out = Chunks { first_only: true, ..Chunks::default() };
            write_query(OperatorQuery::State, &copy, &mut out)
                .expect_err("stops at the first chunk")
        })
    });
    group.finish();
}

criterion_group!(state_reads, benches);
criterion_main!(state_reads);
