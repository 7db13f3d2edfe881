//! The entity index: one key per (entity, log index) in tree `journal_entities`, written
//! with the journal rows, so the history of one thing is a range read of its own keys and
//! never a scan of the journal.
//!
//! Value: the entity's [`Fingerprint`] right after that index (a version byte, then
//! postcard), so a diff reads what an entity was at a point from its newest key at or
//! before it instead of rebuilding the state there. Empty for the kinds a diff leaves out,
//! and for every key written by a build without fingerprints.
//!
//! Key: kind tag (1 byte) ‖ id length (2 bytes, big endian) ‖ id ‖ log index (8 bytes, big
//! endian). The length makes one id's keys a prefix no other id shares; big-endian indexes
//! sort in log order.

use corral_state::{Entity, Fingerprint};

/// Version byte of a fingerprint value.
const FINGERPRINT_VERSION: u8 = 1;

pub(crate) fn encode_fingerprint(fingerprint: &Fingerprint) -> Result<Vec<u8>, String> {
    postcard::to_extend(fingerprint, vec![FINGERPRINT_VERSION]).map_err(|error| error.to_string())
}

/// `Ok(None)` for an empty value: no fingerprint was written with the key.
pub(crate) fn decode_fingerprint(bytes: &[u8]) -> Result<Option<Fingerprint>, String> {
    match bytes.split_first() {
        None => Ok(None),
        Some((&FINGERPRINT_VERSION, rest)) => {
            postcard::from_bytes(rest).map(Some).map_err(|error| error.to_string())
        }
        Some((version, _)) => Err(format!("unknown fingerprint version {version}")),
    }
}

/// The prefix every key of `entity` starts with.
pub(crate) fn prefix(entity: &Entity) -> Vec<u8> {
    let id = entity.id.as_bytes();
    // Ids longer than this cannot be written by any API; the cut keeps the key well formed.
    let length = id.len().min(u16::MAX as usize);
    let mut key = Vec::with_capacity(3 + length + 8);
    key.push(entity.kind.tag());
    key.extend_from_slice(&(length as u16).to_be_bytes());
    key.extend_from_slice(&id[..length]);
    key
}

pub(crate) fn key(entity: &Entity, index: u64) -> Vec<u8> {
    let mut key = prefix(entity);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The log index a key ends with.
pub(crate) fn index_of(key: &[u8]) -> Option<u64> {
    let tail = key.len().checked_sub(8)?;
    Some(u64::from_be_bytes(key[tail..].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use corral_state::{Entity, EntityKind};

    use super::{index_of, key, prefix};

    #[test]
    fn keys_of_one_entity_share_a_prefix_no_other_has() {
        let short = Entity::new(EntityKind::Task, "t1");
        let long = Entity::new(EntityKind::Task, "t10");
        assert!(key(&short, 5).starts_with(&prefix(&short)));
        assert!(!key(&long, 5).starts_with(&prefix(&short)));
        assert!(key(&short, 5) < key(&short, 256));
        assert_eq!(index_of(&key(&short, 258)), Some(258));
    }
}
