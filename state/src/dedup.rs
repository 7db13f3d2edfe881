//! The de-duplication record: request ids seen recently and the outcome each first had.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::{Outcome, RequestId, Timestamp};

/// SipHash with fixed keys: the state takes no randomness, not even a hash seed.
type FixedHasher = std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>;

/// Outcomes in the order the log applied them, and a hash index over them.
///
/// Looked up on every command, so the index is a hash map; its order never reaches an output:
/// the record is encoded (and so digested) in log order. The index maps to a sequence number
/// rather than holding the outcome, which keeps its slots small. Forgetting does not touch the
/// index (a random access into a large table per command); entries older than
/// `first_sequence` are dead, and a sequential sweep drops them once they are as many as the
/// live ones.
#[derive(Clone, Debug, Default)]
pub(crate) struct Dedup {
    /// Oldest first; `remembered[0]` has sequence number `first_sequence`.
    remembered: VecDeque<(Timestamp, RequestId, Outcome)>,
    first_sequence: u64,
    index: HashMap<RequestId, u64, FixedHasher>,
}

impl PartialEq for Dedup {
    fn eq(&self, other: &Dedup) -> bool {
        self.remembered == other.remembered
    }
}

impl Eq for Dedup {}

impl Dedup {
    pub(crate) fn get(&self, request_id: &RequestId) -> Option<&Outcome> {
        let sequence = *self.index.get(request_id)?;
        let position = usize::try_from(sequence.checked_sub(self.first_sequence)?).ok()?;
        self.remembered.get(position).map(|(_, _, outcome)| outcome)
    }

    fn sweep_if_mostly_dead(&mut self) {
        let live = self.remembered.len();
        if self.index.len() < 2 * live.max(1024) {
            return;
        }
        let first_sequence = self.first_sequence;
        self.index.retain(|_, sequence| *sequence >= first_sequence);
    }

    /// Remembers a new request id, forgetting the oldest beyond `capacity`.
    pub(crate) fn remember(
        &mut self,
        at: Timestamp,
        request_id: RequestId,
        outcome: Outcome,
        capacity: usize,
    ) {
        let sequence = self.first_sequence + self.remembered.len() as u64;
        self.index.insert(request_id.clone(), sequence);
        self.remembered.push_back((at, request_id, outcome));
        while self.remembered.len() > capacity.max(1) {
            self.forget_oldest();
        }
        self.sweep_if_mostly_dead();
    }

    pub(crate) fn forget_oldest(&mut self) {
        if self.remembered.pop_front().is_some() {
            self.first_sequence += 1;
        }
    }

    /// Forgets everything remembered longer than `window` before `now`.
    pub(crate) fn expire(&mut self, now: Timestamp, window: std::time::Duration) {
        while let Some((at, _, _)) = self.remembered.front() {
            if now.since(*at) < window {
                break;
            }
            self.forget_oldest();
        }
        self.sweep_if_mostly_dead();
    }
}

impl Serialize for Dedup {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.remembered.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Dedup {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Dedup, D::Error> {
        let remembered: VecDeque<(Timestamp, RequestId, Outcome)> =
            VecDeque::deserialize(deserializer)?;
        let index = remembered
            .iter()
            .enumerate()
            .map(|(position, (_, request_id, _))| (request_id.clone(), position as u64))
            .collect();
        Ok(Dedup { remembered, first_sequence: 0, index })
    }
}
