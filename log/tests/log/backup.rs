//! A backup taken from a running cluster seeds a new one: same state, same digest, and the
//! new cluster takes writes and grows.

use corral_log::backup::{restore, Backup, BackupError, RESTORE_INDEX_GAP};
use corral_log::ReadConsistency;

use super::support::{address_of, eventually, TestCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restored_into_an_empty_directory_starts_a_new_cluster() {
    let old = TestCluster::start(3).await;
    for number in 0..30 {
        old.propose(number).await;
    }
    let leader = old.leader().await;
    // Without a checkpoint the tail is the whole journal, from the first entry.
    let whole = old.node(leader).backup(ReadConsistency::Linearizable).await.unwrap();
    assert_eq!(whole.tail_bounds(), (0, whole.index()));
    // With one, the tail starts there.
    let (state, cursor) = old
        .node(leader)
        .read_with_cursor(ReadConsistency::Linearizable, |state| state.clone())
        .await
        .unwrap();
    old.node(leader).journal().write_checkpoint(cursor.index, &state).unwrap();
    for number in 30..40 {
        old.propose(number).await;
    }
    let leader = old.leader().await;
    let backup = old.node(leader).backup(ReadConsistency::Linearizable).await.unwrap();
    assert!(backup.index() >= 40);
    if old.node(leader).journal().checkpoint_at_or_before(backup.index()).unwrap().is_some() {
        assert_eq!(backup.tail_bounds(), (cursor.index, backup.index()));
    }
    assert_eq!(backup.chain(), old.node(leader).journal().chain_at(backup.index()).unwrap());
    let bytes = backup.encode().unwrap();
    old.shutdown().await;

    let mut corrupted = bytes.clone();
    let last = corrupted.len() / 2;
    corrupted[last] ^= 0xff;
    assert!(Backup::decode(&corrupted).is_err());
    assert!(matches!(Backup::decode(b"not a backup"), Err(BackupError::NotABackup)));

    let decoded = Backup::decode(&bytes).unwrap();
    let mut new = TestCluster::start(0).await;
    let config = new.config(1);
    std::fs::write(config.data_dir.join("stray"), b"x").unwrap();
    assert!(matches!(
        restore(&decoded, &config.data_dir, 1, &address_of(1)).await,
        Err(BackupError::NotEmpty(_))
    ));
    std::fs::remove_file(config.data_dir.join("stray")).unwrap();
    let restored = restore(&decoded, &config.data_dir, 1, &address_of(1)).await.unwrap();
    assert_eq!((restored.index, restored.digest), (backup.index(), backup.digest()));
    let resumed = backup.index() + RESTORE_INDEX_GAP;
    assert_eq!(restored.resumes_after, resumed);

    let node = new.open(config).await;
    assert_eq!(node.applied_digest(), (resumed, backup.digest()));
    eventually("the restored master to lead", || async { node.is_leader().then_some(()) }).await;
    assert!(node.status().term > backup.term());
    let agents = node.read(ReadConsistency::Linearizable, |state| state.agents().len()).await;
    assert_eq!(agents.unwrap(), 40);
    // The restored journal continues the lost cluster's hash chain.
    assert_eq!(node.journal().chain_at(backup.index()).unwrap().hash, backup.chain().hash);
    assert_eq!(node.journal().verify_chain().unwrap().map(drop), Ok(()));
    // New entries lie past every cursor the lost cluster could have handed out.
    assert!(new.propose(100).await.index > resumed);
    // The journal tail came along; nothing before it is claimed.
    let lost = node.journal().lost_through().expect("a restored journal starts after a gap");
    assert_eq!(lost.index, backup.tail_bounds().0);

    let config = new.config(2);
    new.open(config).await;
    node.add_member(2, address_of(2)).await.unwrap();
    new.propose(101).await;
    new.converged(&[1, 2]).await;
    new.shutdown().await;
}
