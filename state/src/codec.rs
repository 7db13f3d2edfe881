//! Bytes on disk and on the wire: every encoding starts with a format version, so a log
//! written today decodes tomorrow. Postcard encodes enum variants by position: add new
//! variants and fields only at the end, and bump `FORMAT_VERSION` with a decoder for the old
//! form when a shape must change.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cluster::ClusterState;
use crate::{Entry, Event, Outcome};

/// The version written by this build.
pub const FORMAT_VERSION: u16 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("encoded data is empty or shorter than its version header")]
    Truncated,
    #[error("format version {found} is newer than this build understands (up to {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("malformed encoding: {0}")]
    Malformed(String),
    #[error("cannot encode: {0}")]
    Unencodable(String),
}

/// Postcard refuses what it cannot write (sequences of unknown length, `serialize_any`);
/// such a value is an error here, never bytes that would fail to decode later.
fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let bytes = FORMAT_VERSION.to_le_bytes().to_vec();
    postcard::to_extend(value, bytes).map_err(|error| CodecError::Unencodable(error.to_string()))
}

fn check_version(bytes: &[u8]) -> Result<(), CodecError> {
    if bytes.len() < 2 {
        return Err(CodecError::Truncated);
    }
    let version = u16::from_le_bytes([bytes[0], bytes[1]]);
    if version > FORMAT_VERSION || version == 0 {
        return Err(CodecError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
    }
    Ok(())
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    check_version(bytes)?;
    postcard::from_bytes(&bytes[2..]).map_err(|error| CodecError::Malformed(error.to_string()))
}

pub fn encode_entry(entry: &Entry) -> Result<Vec<u8>, CodecError> {
    encode(entry)
}

pub fn decode_entry(bytes: &[u8]) -> Result<Entry, CodecError> {
    decode(bytes)
}

/// A batch of commands packed into one Raft entry by the proposer.
pub fn encode_entries(entries: &[Entry]) -> Result<Vec<u8>, CodecError> {
    encode(&entries)
}

pub fn decode_entries(bytes: &[u8]) -> Result<Vec<Entry>, CodecError> {
    decode(bytes)
}

pub fn encode_events(events: &[Event]) -> Result<Vec<u8>, CodecError> {
    encode(&events)
}

pub fn decode_events(bytes: &[u8]) -> Result<Vec<Event>, CodecError> {
    decode(bytes)
}

pub fn encode_outcome(outcome: &Outcome) -> Result<Vec<u8>, CodecError> {
    encode(outcome)
}

pub fn decode_outcome(bytes: &[u8]) -> Result<Outcome, CodecError> {
    decode(bytes)
}

impl ClusterState {
    /// The whole state, encoded canonically: equal states give equal bytes. Access control
    /// follows the rest, only when there is any, so older snapshots still decode and a state
    /// without it keeps the digest it always had.
    pub fn snapshot(&self) -> Result<Vec<u8>, CodecError> {
        let bytes = encode(self)?;
        if self.auth == crate::auth::AuthState::default() {
            return Ok(bytes);
        }
        postcard::to_extend(&self.auth, bytes)
            .map_err(|error| CodecError::Unencodable(error.to_string()))
    }

    pub fn from_snapshot(bytes: &[u8]) -> Result<ClusterState, CodecError> {
        check_version(bytes)?;
        let (mut state, rest): (ClusterState, &[u8]) = postcard::take_from_bytes(&bytes[2..])
            .map_err(|error| CodecError::Malformed(error.to_string()))?;
        if !rest.is_empty() {
            state.auth = postcard::from_bytes(rest)
                .map_err(|error| CodecError::Malformed(format!("access control: {error}")))?;
        }
        state.tally = crate::tally::Tally::recount(&state);
        Ok(state)
    }

    /// blake3 over the canonical encoding: equal states have equal digests on any machine.
    pub fn digest(&self) -> Digest {
        let bytes = self.snapshot().expect(
            "a ClusterState always encodes: it is built only from values that were encoded to reach the log, and holds no type postcard refuses (state/tests/state/codec.rs round-trips every kind)",
        );
        Digest(*blake3::hash(&bytes).as_bytes())
    }
}

/// A state digest, shown as hex.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Digest(pub [u8; 32]);

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digest({self})")
    }
}
