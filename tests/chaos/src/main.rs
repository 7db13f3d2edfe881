//! `corral-chaos --masters 3 --seconds 120 --seed 7 --faults all`: a fault campaign against
//! real masters and agents (see the crate docs). Exits 0 when every check passed and every
//! required fault was applied, 1 on a violation, 2 when the verdict is unknown (a required
//! fault never applied, or the harness itself failed).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Parser;
use corral_chaos::nemesis::FaultKind;
use corral_chaos::run::{run, Options, Report};
use corral_chaos::workload::Redirects;

#[derive(Parser)]
#[command(
    name = "corral-chaos",
    about = "A fault campaign with a checker against real corral masters"
)]
struct Cli {
    /// 3 or 5.
    #[arg(long, default_value_t = 3)]
    masters: usize,
    #[arg(long, default_value_t = 3)]
    agents: usize,
    /// How long faults are injected (setup and the final checks come on top).
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// Stop after this many rounds of every fault kind (each round applies each kind once,
    /// in an order drawn from the seed), even before --seconds.
    #[arg(long)]
    rounds: Option<u64>,
    /// Draws the fault schedule and every workload choice: the same seed, the same run.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// `all`, or a comma-separated list: isolate-leader, leader-minority, majority-ring,
    /// one-way, kill-leader, kill-follower, kill-all, pause-leader, agent-partition,
    /// agent-kill, agent-timeout.
    #[arg(long, default_value = "all")]
    faults: String,
    /// The `corral` binary (default: the one beside this executable).
    #[arg(long)]
    corral: Option<PathBuf>,
    /// Where masters' data, logs and the history go (default: a new directory under /tmp).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// How the register client follows a 307: `as-given` (as client libraries do) or
    /// `keep-query` (puts back a `?consistency=linearizable` the redirect dropped, to look past
    /// that known bug).
    #[arg(long, default_value = "as-given")]
    redirects: String,
    /// Only check the register history of an earlier run again (its `history.jsonl`), e.g.
    /// after a checker fix; nothing is started.
    #[arg(long)]
    recheck: Option<PathBuf>,
    /// The JSON report (default: report.json in the run directory).
    #[arg(long)]
    report: Option<PathBuf>,
}

fn default_corral() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find this executable")?;
    let beside = me.with_file_name("corral");
    if beside.exists() {
        return Ok(beside);
    }
    // `cargo run` puts us in target/<profile>/; a test build may be in deps/.
    if let Some(parent) = me.parent().and_then(|dir| dir.parent()) {
        let up = parent.join("corral");
        if up.exists() {
            return Ok(up);
        }
    }
    bail!(
        "no corral binary beside {}; build it with `cargo build -p corral` or pass --corral",
        me.display()
    )
}

fn print_summary(report: &Report, report_path: &std::path::Path) {
    println!(
        "corral-chaos: seed {}, {} masters, {} agents, {} s of faults ({:.0} s in all)",
        report.seed, report.masters, report.agents, report.seconds, report.elapsed_s
    );
    println!("faults:");
    for kind in &report.faults_required {
        match report.fault_summary.get(kind) {
            Some(summary) => {
                let recovery = summary.recovery_ms.as_ref().map_or(String::new(), |p| {
                    format!(" recovery p50 {} ms p99 {} ms max {} ms", p.p50, p.p99, p.max)
                });
                let kept = summary
                    .leader_kept
                    .as_ref()
                    .map_or(String::new(), |kept| format!(" leader kept {kept}"));
                let back = summary.agent_back_ms.as_ref().map_or(String::new(), |p| {
                    format!(" agent back p50 {} ms max {} ms", p.p50, p.max)
                });
                let service = summary.service_ms.as_ref().map_or(String::new(), |p| {
                    format!(" app task running p50 {} ms max {} ms", p.p50, p.max)
                });
                let t = &summary.throughput;
                println!(
                    "  {:<16} applied {:>3}{recovery}{service}{kept}{back}; ok/s before {:.0} during {:.0} after {:.0}",
                    kind.name(), summary.applied, t.before, t.during, t.after
                );
            }
            None => println!("  {:<16} NEVER APPLIED", kind.name()),
        }
    }
    println!("operations:");
    for (workload, counts) in &report.operations {
        println!(
            "  {workload:<9} ok {:>6} fail {:>5} info {:>5}",
            counts.ok, counts.fail, counts.info
        );
    }
    println!(
        "checked: {} register keys (largest {} ops, {} ms), {} stream events, {} status updates, {} tasks, {} journal indexes, {} terms",
        report.register.keys, report.register.largest_key_ops, report.register.check_millis, report.stream_events_checked,
        report.status_updates_received, report.tasks_launched, report.journal_indexes_checked, report.terms_seen
    );
    match (&report.converged, &report.replay_digest) {
        (Some((index, digest)), Some(replayed)) => println!("converged: every master at index {index} has digest {digest}; corral replay gives {replayed}"),
        _ => println!("converged: NO"),
    }
    if let Some(resubscribe) = &report.framework_resubscribe_ms {
        println!(
            "framework resubscribed {} times: p50 {} ms max {} ms",
            resubscribe.count, resubscribe.p50, resubscribe.max
        );
    }
    println!(
        "elections no leader fault explains: {} {:?}",
        report.unprovoked_elections.len(),
        report.unprovoked_elections
    );
    for violation in &report.violations {
        println!("VIOLATION [{}] {}", violation.checker, violation.what);
    }
    println!("verdict: {} (report: {})", report.verdict, report_path.display());
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match main_with(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("corral-chaos: {error:#}");
            eprintln!("verdict: unknown (the harness failed)");
            ExitCode::from(2)
        }
    }
}

async fn main_with(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(history) = &cli.recheck {
        let text = std::fs::read_to_string(history)
            .with_context(|| format!("cannot read {}", history.display()))?;
        let ops = corral_chaos::history::ops_from_events(&text).map_err(anyhow::Error::msg)?;
        let (violations, summary) = corral_chaos::check::register::check(&ops);
        println!(
            "register: {} keys (largest {} ops) checked in {} ms",
            summary.keys, summary.largest_key_ops, summary.check_millis
        );
        for violation in &violations {
            println!("VIOLATION [{}] {}", violation.checker, violation.what);
        }
        println!("verdict: {}", if violations.is_empty() { "passed" } else { "violations" });
        return Ok(if violations.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    if cli.masters != 3 && cli.masters != 5 {
        bail!("--masters must be 3 or 5, got {}", cli.masters);
    }
    if cli.agents == 0 {
        bail!("--agents must be at least 1");
    }
    let faults = FaultKind::parse_list(&cli.faults).map_err(anyhow::Error::msg)?;
    let redirects = match cli.redirects.as_str() {
        "as-given" => Redirects::AsGiven,
        "keep-query" => Redirects::KeepQuery,
        other => bail!("--redirects must be as-given or keep-query, got {other}"),
    };
    let corral = match cli.corral {
        Some(path) => path,
        None => default_corral()?,
    };
    let run_dir = cli.run_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("corral-chaos-{}", std::process::id()))
    });
    let report_path = cli.report.unwrap_or_else(|| run_dir.join("report.json"));
    let options = Options {
        masters: cli.masters,
        agents: cli.agents,
        seconds: cli.seconds,
        seed: cli.seed,
        faults,
        corral,
        run_dir,
        redirects,
        rounds: cli.rounds,
    };
    let report = tokio::select! {
        report = run(options) => report?,
        _ = tokio::signal::ctrl_c() => bail!("interrupted; processes and namespaces removed"),
    };
    std::fs::write(&report_path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("cannot write {}", report_path.display()))?;
    print_summary(&report, &report_path);
    Ok(match report.verdict {
        "passed" => ExitCode::SUCCESS,
        "violations" => ExitCode::from(1),
        _ => ExitCode::from(2),
    })
}
