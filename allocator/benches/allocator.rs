//! One allocation cycle in the shape of Mesos's `DeclineOffers` benchmark, and the quota case.
//!
//! `CARGO_TARGET_DIR=/work/target-alloc cargo bench -p corral-allocator --bench allocator`
//!
//! Shape: every agent has `cpus:16;mem:65536;disk:102400;ports:[31000-32000]` and runs one
//! task of a framework (round robin) using half of it; all frameworks subscribe to one role.
//! Then, cycle after cycle, one second apart, every framework declines everything it is
//! offered with the default 5 s filter. After ten such cycles the allocator is in its steady
//! state; what is measured is the next cycle: `Allocator::allocate`, including re-reading
//! what the previous cycle's events (offers created, declined, filters added) changed.
//!
//! Quota case: 3,000 agents, 3,000 roles each with a guarantee of `cpus:4;mem:16384` and a
//! limit of `cpus:8;mem:32768`, one framework per role running `cpus:1;mem:4096` tasks, so
//! every cycle starts with guarantees unmet; every framework declines as above.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use corral_allocator::{Allocator, AllocatorConfig};
use corral_state::model::{AgentInfo, Attributes, Filters, FrameworkInfo, QuotaConfig, TaskInfo};
use corral_state::{
    Actor, ClusterState, Command, Entry, Event, FrameworkId, OfferId, Operation, Outcome,
    RequestId, Resources, Role, TaskId, Timestamp,
};
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BatchSize, Criterion, Throughput};

const AGENT_RESOURCES: &str = "cpus:16;mem:65536;disk:102400;ports:[31000-32000]";
const WARM_UP_CYCLES: usize = 10;

struct Bench {
    state: ClusterState,
    allocator: Allocator,
    clock: Timestamp,
    request: u64,
}

impl Bench {
    fn new() -> Bench {
        Bench {
            state: ClusterState::default(),
            allocator: Allocator::new(AllocatorConfig::default()),
            clock: Timestamp::from_secs(1_000),
            request: 0,
        }
    }

    fn apply(&mut self, actor: Actor, command: Command) -> Vec<Event> {
        self.request += 1;
        let entry = Entry {
            request_id: RequestId::new(format!("r{}", self.request)),
            actor,
            at: self.clock,
            command,
        };
        match self.state.apply(&entry) {
            Outcome::Accepted(events) => {
                for event in &events {
                    self.allocator.observe(event);
                }
                events
            }
            other => panic!("benchmark setup command failed: {other:?}"),
        }
    }

    fn add_agents(&mut self, count: usize) {
        let resources: Resources = AGENT_RESOURCES.parse().expect("agent resources parse");
        for number in 0..count {
            let info = AgentInfo {
                hostname: format!("host-{number}"),
                address: format!(
                    "10.{}.{}.{}:5051",
                    number / 65536,
                    (number / 256) % 256,
                    number % 256
                ),
                attributes: Attributes::default(),
            };
            self.apply(
                Actor::Leader,
                Command::RegisterAgent { info, resources: resources.clone() },
            );
        }
    }

    fn subscribe(&mut self, name: String, role: &str) -> FrameworkId {
        let info = FrameworkInfo {
            user: "bench".to_owned(),
            name,
            roles: vec![Role::parse(role).expect("bench role parses")],
            failover_timeout: Duration::from_secs(3600),
            checkpoint: false,
            hostname: None,
            principal: None,
            webui_url: None,
            capabilities: Default::default(),
            labels: Vec::new(),
        };
        let events = self.apply(Actor::Leader, Command::Subscribe { framework_id: None, info });
        match &events[..] {
            [Event::FrameworkAdded { framework_id, .. }] => framework_id.clone(),
            other => panic!("unexpected events {other:?}"),
        }
    }

    /// One cycle whose offers the frameworks either use (one task each) or decline.
    fn cycle(&mut self, task: Option<&Resources>) -> usize {
        let allocation = self.allocator.allocate(&self.state, self.clock);
        let wanted = allocation.offers.len();
        if wanted > 0 {
            self.apply(Actor::Leader, Command::OfferResources { offers: allocation.offers });
        }
        let mut by_framework: BTreeMap<FrameworkId, Vec<OfferId>> = BTreeMap::new();
        let offers: Vec<_> = self.state.offers().values().cloned().collect();
        for offer in offers {
            match task {
                Some(task) => {
                    self.request += 1;
                    let task_info = TaskInfo::shell(
                        TaskId::new(format!("task-{}", self.request)),
                        offer.agent_id.clone(),
                        task.clone(),
                        "sleep 1d",
                    );
                    let command = Command::Accept {
                        framework_id: offer.framework_id.clone(),
                        offer_ids: vec![offer.id.clone()],
                        operations: vec![Operation::Launch { task_infos: vec![task_info] }],
                        filters: Filters { refuse: Duration::ZERO },
                    };
                    self.apply(Actor::Framework(offer.framework_id.clone()), command);
                }
                None => by_framework
                    .entry(offer.framework_id.clone())
                    .or_default()
                    .push(offer.id.clone()),
            }
        }
        for (framework_id, offer_ids) in by_framework {
            let command = Command::Decline {
                framework_id: framework_id.clone(),
                offer_ids,
                filters: Filters::default(),
            };
            self.apply(Actor::Framework(framework_id), command);
        }
        self.clock = self.clock.plus(Duration::from_secs(1));
        wanted
    }

    /// Until every agent runs one task, then the declining cycles.
    fn reach_steady_state(&mut self, task: &Resources, agents: usize) {
        let mut running = 0;
        while running < agents {
            let launched = self.cycle(Some(task));
            assert!(launched > 0, "setup stalled with {running} of {agents} tasks");
            running += launched;
        }
        for _ in 0..WARM_UP_CYCLES {
            self.cycle(None);
        }
    }
}

fn decline_offers_shape(agents: usize, frameworks: usize) -> Bench {
    let mut bench = Bench::new();
    bench.add_agents(agents);
    for number in 0..frameworks {
        bench.subscribe(format!("framework-{number}"), "bench");
    }
    let task: Resources = "cpus:8;mem:32768;disk:51200".parse().expect("task resources parse");
    // Each agent is offered whole, so the first cycles launch one task per agent.
    bench.reach_steady_state(&task, agents);
    bench
}

fn quota_shape(agents: usize, roles: usize) -> Bench {
    let mut bench = Bench::new();
    bench.add_agents(agents);
    let mut configs = Vec::with_capacity(roles);
    for number in 0..roles {
        let role = format!("quota-{number:04}");
        bench.subscribe(format!("framework-{number}"), &role);
        configs.push(QuotaConfig {
            role: Role::parse(&role).expect("bench role parses"),
            guarantees: "cpus:4;mem:16384".parse::<Resources>().expect("parse").scalar_quantities(),
            limits: "cpus:8;mem:32768".parse::<Resources>().expect("parse").scalar_quantities(),
        });
    }
    bench.apply(Actor::Operator { principal: None }, Command::UpdateQuota { configs });
    let task: Resources = "cpus:1;mem:4096".parse().expect("task resources parse");
    bench.reach_steady_state(&task, roles.min(agents));
    bench
}

/// Builds the steady state only when criterion's filter selects the benchmark, once.
fn measure<M: Measurement + 'static>(
    criterion: &mut Criterion<M>,
    name: &str,
    build: impl Fn() -> Bench,
) {
    let mut built: Option<Bench> = None;
    criterion.bench_function(name, |bencher| {
        let bench = built.get_or_insert_with(|| {
            let bench = build();
            let mut probe = bench.allocator.clone();
            let started = Instant::now();
            let allocation = probe.allocate(&bench.state, bench.clock);
            let with_refresh = started.elapsed();
            // Nothing is marked changed now, so this one is the decisions alone.
            let started = Instant::now();
            probe.allocate(&bench.state, bench.clock);
            let without_refresh = started.elapsed();
            eprintln!(
                "{name}: the measured cycle makes {} offers over {} agents with free resources; \
                 one run took {with_refresh:?}, {without_refresh:?} of it deciding; allocator ~{} MiB",
                allocation.offers.len(),
                allocation.summary.agents_with_free_resources,
                bench.allocator.approximate_heap_bytes() / (1024 * 1024),
            );
            bench
        });
        let now = bench.clock;
        bencher.iter_batched_ref(
            || bench.allocator.clone(),
            |allocator| allocator.allocate(&bench.state, now),
            BatchSize::LargeInput,
        )
    });
}

fn decline_offers<M: Measurement + 'static>(criterion: &mut Criterion<M>) {
    for agents in [1_000, 10_000, 50_000] {
        for frameworks in [1, 100, 1_000, 6_000] {
            let name = format!("decline_offers/{agents}_agents/{frameworks}_frameworks");
            measure(criterion, &name, || decline_offers_shape(agents, frameworks));
        }
    }
}

fn quota<M: Measurement + 'static>(criterion: &mut Criterion<M>) {
    measure(criterion, "quota/3000_agents/3000_roles/3000_frameworks", || {
        quota_shape(3_000, 3_000)
    });
}

fn memory<M: Measurement + 'static>(criterion: &mut Criterion<M>) {
    // A benchmark only so that criterion's filter can select or skip it; built once.
    let mut rebuilt: Option<Allocator> = None;
    criterion.bench_function("memory/50000_agents/6000_frameworks", |bencher| {
        let allocator = rebuilt.get_or_insert_with(|| {
            let bench = decline_offers_shape(50_000, 6_000);
            let allocator = Allocator::from_state(AllocatorConfig::default(), &bench.state);
            eprintln!(
                "memory at 50,000 agents × 6,000 frameworks: allocator structures ~{} MiB",
                allocator.approximate_heap_bytes() / (1024 * 1024),
            );
            allocator
        });
        bencher.iter(|| allocator.approximate_heap_bytes())
    });
}

/// Time this thread spent on a CPU, from /proc/thread-self/schedstat (Linux, nanoseconds):
/// on a machine shared with other work, wall time also counts waiting for a CPU, which says
/// more about the neighbours than about the allocator.
struct OnCpuTime;

fn on_cpu_nanos() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    text.split_whitespace().next().and_then(|first| first.parse().ok()).unwrap_or(0)
}

impl Measurement for OnCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        on_cpu_nanos()
    }

    fn end(&self, started: u64) -> u64 {
        on_cpu_nanos().saturating_sub(started)
    }

    fn add(&self, first: &u64, second: &u64) -> u64 {
        first + second
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &NanosecondFormatter
    }
}

struct NanosecondFormatter;

impl ValueFormatter for NanosecondFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (divisor, unit) = match typical {
            t if t < 1e3 => (1.0, "ns (on CPU)"),
            t if t < 1e6 => (1e3, "µs (on CPU)"),
            t if t < 1e9 => (1e6, "ms (on CPU)"),
            _ => (1e9, "s (on CPU)"),
        };
        for value in values.iter_mut() {
            *value /= divisor;
        }
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        _throughput: &Throughput,
        _values: &mut [f64],
    ) -> &'static str {
        "ns (on CPU)"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn configured<M: Measurement + 'static>(criterion: Criterion<M>) -> Criterion<M> {
    criterion
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn main() {
    // `CORRAL_BENCH_CLOCK=cpu` measures time on CPU instead of wall time.
    if std::env::var("CORRAL_BENCH_CLOCK").is_ok_and(|clock| clock == "cpu") {
        let mut criterion =
            configured(Criterion::default().with_measurement(OnCpuTime)).configure_from_args();
        decline_offers(&mut criterion);
        quota(&mut criterion);
        memory(&mut criterion);
        criterion.final_summary();
        return;
    }
    let mut criterion = configured(Criterion::default()).configure_from_args();
    decline_offers(&mut criterion);
    quota(&mut criterion);
    memory(&mut criterion);
    criterion.final_summary();
}
