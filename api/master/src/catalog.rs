//! The service catalog of the applied state (`corral_dns::Catalog`), rebuilt at most once per
//! applied log index and shared by every reader, with the index at which each service last
//! changed; and the long poll that waits for a change after a client's index. Every master
//! answers, leader or not: staleness is one apply, as for DNS.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use corral_dns::{Catalog, ChangeIndex};
use corral_log::ReadConsistency;
use corral_state::AppId;

use crate::error::ApiError;
use crate::master::Master;

/// The last catalog built and what its builds have seen change.
#[derive(Default)]
pub struct CatalogCache {
    tracked: Mutex<Option<Tracked>>,
}

struct Tracked {
    built_at: u64,
    catalog: Arc<Catalog>,
    changes: ChangeIndex,
}

/// A catalog and the index to hand back with it.
pub(crate) struct CatalogView {
    pub catalog: Arc<Catalog>,
    /// When what was asked for (the whole catalog, or one service) last changed.
    pub index: u64,
}

/// What a long poll watches.
#[derive(Clone, Copy)]
pub(crate) enum Watched<'a> {
    Everything,
    Service(&'a AppId),
}

impl Master {
    /// The catalog of the state as applied now, and when `watched` last changed.
    async fn catalog_now(&self, watched: Watched<'_>) -> Result<(CatalogView, u64), ApiError> {
        let node = self.node();
        // Read before the state: the state may be newer, never older, so a change is never
        // dated before it was applied.
        let applied = node.applied_index();
        let cached = {
            let tracked = self.inner.catalog.tracked.lock().expect("not poisoned");
            tracked.as_ref().filter(|t| t.built_at == applied).map(|t| view(t, watched))
        };
        if let Some(view) = cached {
            return Ok((view, applied));
        }
        let catalog = Arc::new(self.read_state(ReadConsistency::Local, Catalog::build).await?);
        let mut tracked = self.inner.catalog.tracked.lock().expect("not poisoned");
        match tracked.as_mut() {
            // Another request built a newer one meanwhile: keep that.
            Some(current) if current.built_at >= applied => {}
            Some(current) => {
                current.changes.record(&current.catalog, &catalog, applied);
                current.built_at = applied;
                current.catalog = catalog;
            }
            None => {
                let changes = ChangeIndex::first(&catalog, applied);
                *tracked = Some(Tracked { built_at: applied, catalog, changes });
            }
        }
        let current = tracked.as_ref().expect("set just above");
        Ok((view(current, watched), current.built_at))
    }

    /// The catalog once `watched` changed after `after`, or as it is when `wait` is up;
    /// at once without `after`.
    pub(crate) async fn catalog_after(
        &self,
        watched: Watched<'_>,
        after: Option<u64>,
        wait: Duration,
    ) -> Result<CatalogView, ApiError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut applied_index = self.node().watch_applied_index();
        loop {
            let (view, built_at) = self.catalog_now(watched).await?;
            if after.is_none_or(|after| view.index > after) {
                return Ok(view);
            }
            let moved = applied_index.wait_for(|index| *index > built_at);
            match tokio::time::timeout_at(deadline, moved).await {
                Ok(Ok(_)) => {}
                // Time is up, or the log is closing: answer with what there is.
                Ok(Err(_)) | Err(_) => return Ok(view),
            }
        }
    }
}

fn view(tracked: &Tracked, watched: Watched<'_>) -> CatalogView {
    let index = match watched {
        Watched::Everything => tracked.changes.latest(),
        Watched::Service(id) => tracked.changes.of(id),
    };
    CatalogView { catalog: tracked.catalog.clone(), index }
}
