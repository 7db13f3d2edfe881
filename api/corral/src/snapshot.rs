//! `corral snapshot save|restore`: back the cluster up to a file, and seed a new cluster's
//! first master from one (disaster recovery after losing a quorum).

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use corral_client::ClusterClient;
use corral_log::backup::{self, Backup};
use corral_log::NodeId;

/// Downloads a backup, checks it decodes with the digest it claims, and writes it by temp
/// file, fsync and rename: `file` is whole or untouched.
pub(crate) async fn save(masters: &str, file: &Path) -> anyhow::Result<()> {
    let download = ClusterClient::new(reqwest::Client::new(), masters).snapshot().await?;
    let backup = Backup::decode(&download.bytes).context("the master sent a broken backup")?;
    if backup.index() != download.index || backup.digest().to_string() != download.digest {
        bail!(
            "the backup holds index {} digest {}, not the index {} digest {} its headers said",
            backup.index(),
            backup.digest(),
            download.index,
            download.digest
        );
    }
    let temporary = file.with_extension("partial");
    let mut out = std::fs::File::create(&temporary)
        .with_context(|| format!("cannot create {}", temporary.display()))?;
    out.write_all(&download.bytes)
        .and_then(|()| out.sync_all())
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, file)
        .with_context(|| format!("cannot rename {} to {}", temporary.display(), file.display()))?;
    if let Some(directory) = file.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::File::open(directory)
            .and_then(|directory| directory.sync_all())
            .with_context(|| format!("cannot sync {}", directory.display()))?;
    }
    let (checkpoint, last) = backup.tail_bounds();
    println!(
        "saved the state at log index {} (term {}), digest {}, journal chain {}: the checkpoint at index {checkpoint} and the journal after it to {last}, {} bytes, to {}",
        backup.index(),
        backup.term(),
        backup.digest(),
        backup.chain().hex(),
        download.bytes.len(),
        file.display()
    );
    Ok(())
}

pub(crate) async fn restore(
    file: &Path,
    data_dir: &Path,
    node_id: NodeId,
    listen: &str,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let backup = Backup::decode(&bytes).with_context(|| format!("{}", file.display()))?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create --data-dir {}", data_dir.display()))?;
    let restored = backup::restore(&backup, data_dir, node_id, listen).await?;
    println!(
        "restored the state at log index {} (term {}), digest {}, with {} journal entries into {}; the new log resumes after index {}",
        restored.index,
        restored.term,
        restored.digest,
        restored.journal_rows,
        data_dir.display(),
        restored.resumes_after
    );
    println!(
        "start it, the only master of a new cluster:  corral master --node-id {node_id} --listen {listen} --data-dir {}",
        data_dir.display()
    );
    println!("then add the others (empty --data-dir, no --peers):  corral members add ID ADDRESS --master {listen}");
    Ok(())
}
