//! The hash chain: every journal row carries blake3(previous hash ‖ index ‖ row), where the
//! row is what the journal stores for that index (the leader's stamp, then the encoded
//! batch: the very bytes Raft replicated). Every master journals the same rows at the same
//! indexes, so every master computes the same chain; altering, removing or moving one row
//! changes every hash from it on.
//!
//! The chain starts from [`GENESIS`] (32 zero bytes) at the first journaled entry. A master
//! that installs a snapshot continues from the hash the snapshot carries (in its id), so
//! it computes the same chain as the others from there.

use serde::{Deserialize, Serialize};

pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// The newest link of the chain: the hash of the row at `index` (0 and [`GENESIS`] before
/// any row).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub index: u64,
    pub hash: [u8; 32],
}

impl ChainHead {
    pub const GENESIS: ChainHead = ChainHead { index: 0, hash: GENESIS };

    /// The head after the row at `index`.
    pub(crate) fn link(&self, index: u64, row: &[u8]) -> ChainHead {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.hash);
        hasher.update(&index.to_be_bytes());
        hasher.update(row);
        ChainHead { index, hash: *hasher.finalize().as_bytes() }
    }

    pub fn hex(&self) -> String {
        self.hash.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// The form a snapshot id carries: `chain-<index>-<hex>`.
    pub(crate) fn to_tag(self) -> String {
        format!("chain-{}-{}", self.index, self.hex())
    }

    /// Reads the head back from a snapshot id; `None` for an id without one (a snapshot
    /// made by an older build).
    pub(crate) fn from_snapshot_id(id: &str) -> Option<ChainHead> {
        let (_, tag) = id.rsplit_once("chain-")?;
        let (index, hex) = tag.split_once('-')?;
        let index = index.parse().ok()?;
        if hex.len() != 64 {
            return None;
        }
        let mut hash = [0; 32];
        for (position, byte) in hash.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(position * 2..position * 2 + 2)?, 16).ok()?;
        }
        Some(ChainHead { index, hash })
    }

    pub(crate) fn encode(&self) -> [u8; 40] {
        let mut bytes = [0; 40];
        bytes[..8].copy_from_slice(&self.index.to_be_bytes());
        bytes[8..].copy_from_slice(&self.hash);
        bytes
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<ChainHead> {
        let index = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let hash = bytes.get(8..40)?.try_into().ok()?;
        Some(ChainHead { index, hash })
    }
}

impl std::fmt::Display for ChainHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.hex(), self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::ChainHead;

    #[test]
    fn a_head_survives_a_snapshot_id() {
        let head = ChainHead::GENESIS.link(7, b"row");
        let id = format!("T3-N1-42-5-{}", head.to_tag());
        assert_eq!(ChainHead::from_snapshot_id(&id), Some(head));
        assert_eq!(ChainHead::from_snapshot_id("T3-N1-42-5"), None);
        assert_eq!(ChainHead::decode(&head.encode()), Some(head));
    }

    #[test]
    fn each_link_depends_on_the_index_and_the_row() {
        let base = ChainHead::GENESIS;
        assert_ne!(base.link(1, b"a"), base.link(2, b"a"));
        assert_ne!(base.link(1, b"a"), base.link(1, b"b"));
        assert_eq!(base.link(1, b"a"), base.link(1, b"a"));
    }
}
