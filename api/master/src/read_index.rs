//! A read barrier for followers: what the leader had committed when asked, applied here.
//!
//! Each master authenticates from its own applied state, so a token (or a Mesos credential)
//! created on the leader a moment ago is unknown to a follower that has not applied it yet.
//! Before a master answers "unknown identity" it catches up with the leader (`catch_up`):
//! the leader confirms its leadership with a quorum and names the log index reads are
//! consistent with (`GET /corral/raft/read-index`, beside Raft's own routes: with TLS only a
//! master's certificate reaches it, with a cluster secret only a request signed with it),
//! and this master waits until it has applied that index.
//! On the leader itself a linearizable barrier does the same. Only an identity that is not
//! found pays for this, never a good one.

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use corral_log::network::signed;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::master::Master;

/// A master that cannot catch up in this long answers with what it has (a 401): a token
/// committed a moment ago is applied everywhere within a few heartbeats.
pub(crate) const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) const READ_INDEX_PATH: &str = "/corral/raft/read-index";

#[derive(Debug, Serialize, Deserialize)]
struct ReadIndex {
    index: u64,
}

pub(crate) fn router(master: Master) -> Router {
    Router::new().route(READ_INDEX_PATH, get(read_index)).with_state(master)
}

/// The leader's read index; a follower answers as a follower does (307 or 503).
async fn read_index(State(master): State<Master>) -> Result<Json<ReadIndex>, ApiError> {
    let index =
        master.node().ensure_linearizable().await.map_err(|error| master.log_error(error))?;
    Ok(Json(ReadIndex { index }))
}

/// Waits, at most `CATCH_UP_TIMEOUT`, until this master has applied everything the leader
/// had committed when asked; `Err` says why it could not.
pub(crate) async fn catch_up(master: &Master) -> Result<(), String> {
    let caught_up = async {
        let index = match master.leader_elsewhere().map_err(|error| error.to_string())? {
            None => {
                return master
                    .node()
                    .ensure_linearizable()
                    .await
                    .map(drop)
                    .map_err(|error| error.to_string())
            }
            Some(leader) => leader_read_index(master, &leader).await?,
        };
        master
            .node()
            .watch_applied_index()
            .wait_for(|applied| *applied >= index)
            .await
            .map(drop)
            .map_err(|_| "the log stopped applying".to_owned())
    };
    tokio::time::timeout(CATCH_UP_TIMEOUT, caught_up)
        .await
        .map_err(|_| format!("not caught up with the leader within {CATCH_UP_TIMEOUT:?}"))?
}

async fn leader_read_index(master: &Master, leader: &str) -> Result<u64, String> {
    let scheme = if master.inner.serving.tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{leader}{READ_INDEX_PATH}");
    let secret = master.inner.serving.cluster_secret.as_ref();
    let request = master.inner.leader_http.get(&url);
    let answer = signed(request, secret, "GET", READ_INDEX_PATH, b"")
        .timeout(CATCH_UP_TIMEOUT)
        .send()
        .await
        .map_err(|error| format!("GET {url}: {error:?}"))?;
    if !answer.status().is_success() {
        return Err(format!("GET {url}: {}", answer.status()));
    }
    let read: ReadIndex =
        answer.json().await.map_err(|error| format!("GET {url}: the answer: {error}"))?;
    Ok(read.index)
}
