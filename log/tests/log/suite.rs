//! openraft's own storage conformance suite over the sled stores.

use corral_log::store::{self, LogStore, StateMachineStore};
use corral_log::{typ, JournalRetention, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};

struct SledStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for SledStoreBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), typ::StorageError> {
        let directory = tempfile::tempdir().map_err(|error| typ::StorageIOError::write(&error))?;
        let (log_store, state_machine) = store::open(
            directory.path(),
            store::InitialSettings::Recorded,
            JournalRetention::KEEP_ALL,
        )
        .map_err(|error| typ::StorageIOError::write(&error))?;
        Ok((directory, log_store, state_machine))
    }
}

#[test]
fn sled_store_passes_the_openraft_suite() {
    Suite::test_all(SledStoreBuilder).unwrap();
}
