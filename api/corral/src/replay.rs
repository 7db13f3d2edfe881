//! `corral replay`: rebuild the cluster state from a stopped master's journal, up to an index
//! or a time, and check it against the state the master itself snapshotted.

use std::path::Path;

use anyhow::bail;
use corral_log::store;
use corral_log::JournalRetention;
use corral_state::{ClusterState, Digest, Timestamp};

use crate::ReplayArgs;

/// Where to stop replaying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayUntil {
    End,
    Index(u64),
    /// The last entry stamped at or before this time.
    Time(Timestamp),
}

/// Whether to check the journal: its hash chain, and the state against the master's own
/// snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    Skip,
    /// Recomputes the hash chain, and replays to the snapshot's index too requiring the
    /// same digest.
    AgainstSnapshot,
}

#[derive(Debug)]
pub struct ReplayReport {
    pub first_index: u64,
    pub last_index: u64,
    pub commands: u64,
    pub state: ClusterState,
    pub digest: Digest,
    /// The snapshot's index and whether the journal replayed to it gives its digest.
    pub verified: Option<(u64, bool)>,
    /// The recomputed chain's head, when verified.
    pub chain: Option<corral_log::ChainHead>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot open {0} (is a master still running on it?): {1}")]
    Open(String, String),
    #[error("the journal is empty")]
    Empty,
    #[error("the journal starts at index {first}: older entries were dropped by retention, so the state cannot be rebuilt from it alone")]
    Truncated { first: u64 },
    #[error("reading the journal: {0}")]
    Journal(String),
    #[error("the journal was altered: the row at index {index} is not what was journaled (its hash chain breaks there)")]
    Altered { index: u64 },
}

/// Replays `data_dir`'s journal from the first index.
pub fn replay(
    data_dir: &Path,
    until: ReplayUntil,
    verification: Verification,
) -> Result<ReplayReport, ReplayError> {
    let (_, state_machine) =
        store::open(data_dir, store::InitialSettings::Recorded, JournalRetention::KEEP_ALL)
            .map_err(|error| {
                ReplayError::Open(data_dir.display().to_string(), error.to_string())
            })?;
    let journal = state_machine.journal();
    let (first, last) = journal
        .bounds()
        .map_err(|error| ReplayError::Journal(error.to_string()))?
        .ok_or(ReplayError::Empty)?;
    if journal.lost_through().is_some() {
        return Err(ReplayError::Truncated { first });
    }
    // Before replaying: an altered row may not even decode, and the chain names it.
    let chain = match verification {
        Verification::Skip => None,
        Verification::AgainstSnapshot => {
            match journal.verify_chain().map_err(|error| ReplayError::Journal(error.to_string()))? {
                Ok(head) => Some(head),
                Err(index) => return Err(ReplayError::Altered { index }),
            }
        }
    };

    let end = match until {
        ReplayUntil::End => last,
        ReplayUntil::Index(index) => index.min(last),
        ReplayUntil::Time(at) => {
            journal.index_at(at).map_err(|error| ReplayError::Journal(error.to_string()))?
        }
    };
    let mut state = state_machine.initial_state();
    let commands = journal
        .replay(&mut state, first..=end)
        .map_err(|error| ReplayError::Journal(error.to_string()))?;
    let digest = state.digest();
    let verified = match verification {
        Verification::Skip => None,
        Verification::AgainstSnapshot => {
            let applied = state_machine.read();
            let snapshot_index = applied.last_applied.map_or(0, |log_id| log_id.index);
            let mut at_snapshot = state_machine.initial_state();
            journal
                .replay(&mut at_snapshot, first..=snapshot_index)
                .map_err(|error| ReplayError::Journal(error.to_string()))?;
            Some((snapshot_index, at_snapshot.digest() == applied.state.digest()))
        }
    };
    Ok(ReplayReport {
        first_index: first,
        last_index: end,
        commands,
        state,
        digest,
        verified,
        chain,
    })
}

/// The state document `--json` prints: the v0 `/master/state` shape with what it answers
/// for, as `GET /corral/v1/state` gives it.
pub fn state_document(report: &ReplayReport) -> serde_json::Value {
    let mut body = corral_mesos::v0::master_state(
        &report.state,
        serde_json::json!({"log_index": report.last_index}),
    );
    body["corral_state"] = serde_json::json!({
        "index": report.last_index,
        "time": report.state.now().to_rfc3339(),
        "epoch": report.state.now().as_secs_f64(),
        "digest": report.digest.to_string(),
    });
    body
}

/// `corral replay`: prints what the journal replays to and, with `--verify`, the checks.
pub(crate) fn run(args: &ReplayArgs) -> anyhow::Result<()> {
    let until = match (args.to, &args.at) {
        (Some(index), _) => ReplayUntil::Index(index),
        (None, Some(at)) => match Timestamp::parse(at) {
            Ok(at) => ReplayUntil::Time(at),
            Err(problem) => bail!("--at: {problem}"),
        },
        (None, None) => ReplayUntil::End,
    };
    let verification = if args.verify { Verification::AgainstSnapshot } else { Verification::Skip };
    let report = replay(&args.data_dir, until, verification)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&state_document(&report))?);
    } else {
        print_summary(&report);
    }
    if let Some((index, matches)) = report.verified {
        if !matches {
            bail!(
                "the journal replayed to index {index} does NOT give the master's snapshot state"
            );
        }
        if !args.json {
            println!(
                "verified: the journal replayed to index {index} gives the master's snapshot state"
            );
        }
    }
    if let (Some(head), false) = (report.chain, args.json) {
        println!("verified: hash chain intact, head {} at index {}", head.hex(), head.index);
    }
    Ok(())
}

fn print_summary(report: &ReplayReport) {
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
}
