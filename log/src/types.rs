//! The openraft type configuration: what a Raft entry carries and what applying it returns.

use std::fmt;
use std::sync::Arc;
// The default snapshot data type of `declare_raft_types!` names `Cursor` unqualified.
use std::io::Cursor;

use corral_state::{codec, Entry, Outcome};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Corral's Raft types: a Raft entry carries a batch of commands; applying it returns
    /// each command's outcome.
    pub TypeConfig:
        D = Batch,
        R = BatchResponse,
);

/// The commands the proposer packed into one Raft entry, in the order they are applied.
///
/// Serialized with `corral_state::codec` (versioned postcard) as one byte string, so the
/// on-disk form of commands is owned by `corral-state` whatever openraft's own encoding is.
/// The encoding is kept once made (or received): the same bytes go to the Raft log, to every
/// follower and into the journal without encoding the commands again.
#[derive(Clone, Debug)]
pub struct Batch {
    entries: Vec<Entry>,
    encoded: Arc<[u8]>,
}

impl Batch {
    /// Encodes the entries once, in the proposer, where a failure reaches the callers: a
    /// batch that exists always has bytes that decode.
    pub fn encode(entries: Vec<Entry>) -> Result<Batch, codec::CodecError> {
        let encoded = codec::encode_entries(&entries)?.into();
        Ok(Batch { entries, encoded })
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn into_entries(self) -> Vec<Entry> {
        self.entries
    }

    /// The versioned encoding of the entries, as `codec::decode_entries` reads it.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }
}

impl PartialEq for Batch {
    fn eq(&self, other: &Batch) -> bool {
        self.entries == other.entries
    }
}

impl Eq for Batch {}

impl Serialize for Batch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.encoded())
    }
}

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Batch, D::Error> {
        deserializer.deserialize_bytes(BatchVisitor)
    }
}

struct BatchVisitor;

impl<'de> Visitor<'de> for BatchVisitor {
    type Value = Batch;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an encoded batch of entries")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Batch, E> {
        let entries = codec::decode_entries(bytes).map_err(E::custom)?;
        Ok(Batch { entries, encoded: Arc::from(bytes) })
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Batch, E> {
        self.visit_bytes(&bytes)
    }

    // Self-describing formats without a byte type (JSON) hand bytes over as a sequence.
    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Batch, A::Error> {
        let mut bytes = Vec::with_capacity(sequence.size_hint().unwrap_or(0));
        while let Some(byte) = sequence.next_element::<u8>()? {
            bytes.push(byte);
        }
        self.visit_bytes(&bytes)
    }
}

/// What applying one Raft entry produced: the entry's log index and one outcome per command
/// of its batch, in batch order. Blank and membership entries have no outcomes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    pub index: u64,
    pub outcomes: Vec<Outcome>,
}

/// Aliases of openraft's generic types for [`TypeConfig`].
pub mod typ {
    use super::{NodeId, TypeConfig};

    pub type Raft = openraft::Raft<TypeConfig>;
    pub type Node = openraft::BasicNode;
    pub type Entry = openraft::Entry<TypeConfig>;
    pub type LogId = openraft::LogId<NodeId>;
    pub type Vote = openraft::Vote<NodeId>;
    pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
    pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
    pub type Snapshot = openraft::Snapshot<TypeConfig>;
    pub type StorageError = openraft::StorageError<NodeId>;
    pub type StorageIOError = openraft::StorageIOError<NodeId>;
    pub type RaftError<E = openraft::error::Infallible> = openraft::error::RaftError<NodeId, E>;
    pub type RPCError<E = openraft::error::Infallible> =
        openraft::error::RPCError<NodeId, Node, RaftError<E>>;
    pub type ClientWriteError = openraft::error::ClientWriteError<NodeId, Node>;
    pub type CheckIsLeaderError = openraft::error::CheckIsLeaderError<NodeId, Node>;
    pub type InstallSnapshotError = openraft::error::InstallSnapshotError;
    pub type AppendEntriesRequest = openraft::raft::AppendEntriesRequest<TypeConfig>;
    pub type AppendEntriesResponse = openraft::raft::AppendEntriesResponse<NodeId>;
    pub type VoteRequest = openraft::raft::VoteRequest<NodeId>;
    pub type VoteResponse = openraft::raft::VoteResponse<NodeId>;
    pub type InstallSnapshotRequest = openraft::raft::InstallSnapshotRequest<TypeConfig>;
    pub type InstallSnapshotResponse = openraft::raft::InstallSnapshotResponse<NodeId>;
    pub type RaftMetrics = openraft::RaftMetrics<NodeId, Node>;
}

#[cfg(test)]
mod tests {
    use corral_state::{Actor, Command, Entry, RequestId, Timestamp};

    use super::Batch;

    fn batch() -> Batch {
        let command = Command::AgentHeartbeat { agent_id: "agent-1".into() };
        let entry = Entry {
            request_id: RequestId::new("r-1"),
            actor: Actor::Leader,
            at: Timestamp(7),
            command,
        };
        Batch::encode(vec![entry.clone(), Entry { request_id: RequestId::new("r-2"), ..entry }])
            .expect("test entries encode")
    }

    #[test]
    fn a_batch_round_trips_through_postcard_and_json_keeping_its_encoding() {
        let original = batch();
        let through_postcard: Batch =
            postcard::from_bytes(&postcard::to_allocvec(&original).unwrap()).unwrap();
        assert_eq!(through_postcard, original);
        assert_eq!(through_postcard.encoded(), original.encoded());
        let through_json: Batch =
            serde_json::from_str(&serde_json::to_string(&original).unwrap()).unwrap();
        assert_eq!(through_json, original);
    }
}
