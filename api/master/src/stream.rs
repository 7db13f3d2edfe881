//! Streaming responses: a task pumps events into a bounded channel that the response body
//! drains. When the client goes away the channel closes and the task stops.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use corral_log::{Subscription, SubscriptionEnded};
use corral_state::Event;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// What one log event becomes on the wire.
pub enum Step {
    Send(Vec<Bytes>),
    /// Send, then end the stream.
    SendAndEnd(Vec<Bytes>),
}

/// Why a pump stopped, for the caller's clean-up.
#[derive(Debug, PartialEq, Eq)]
pub enum PumpEnd {
    ClientGone,
    /// The mapping asked to end, or something outside did (`stop`).
    Ended,
    Subscription(SubscriptionEnded),
}

/// Chunks buffered between the pump and a slow client before the pump waits.
const BODY_BUFFER: usize = 256;

pub fn channel_body() -> (mpsc::Sender<Bytes>, Body) {
    let (sender, receiver) = mpsc::channel::<Bytes>(BODY_BUFFER);
    let body = Body::from_stream(ReceiverStream::new(receiver).map(Ok::<Bytes, Infallible>));
    (sender, body)
}

/// Sends `first`, then every event of `subscription` through `map`, with `heartbeat` every
/// `interval`, until the client leaves, `map` ends it, the subscription ends, or `stop`
/// resolves. `on_end` gets the final frame for a subscription that ended (e.g. "too slow").
pub async fn pump(
    sender: mpsc::Sender<Bytes>,
    first: Vec<Bytes>,
    mut subscription: Subscription,
    mut map: impl FnMut(&Event, corral_state::Cursor) -> Step + Send,
    heartbeat: Option<(Duration, Bytes)>,
    stop: impl std::future::Future<Output = ()> + Send,
    on_subscription_end: impl FnOnce(&SubscriptionEnded) -> Option<Bytes> + Send,
) -> PumpEnd {
    for chunk in first {
        if sender.send(chunk).await.is_err() {
            return PumpEnd::ClientGone;
        }
    }
    let (interval, heartbeat_chunk) = match heartbeat {
        Some((interval, chunk)) => (interval, Some(chunk)),
        None => (Duration::from_secs(3600), None),
    };
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return PumpEnd::Ended,
            () = sender.closed() => return PumpEnd::ClientGone,
            _ = ticker.tick() => {
                if let Some(chunk) = &heartbeat_chunk {
                    if sender.send(chunk.clone()).await.is_err() {
                        return PumpEnd::ClientGone;
                    }
                }
            }
            next = subscription.next() => match next {
                Some(Ok(journal_event)) => {
                    let (chunks, end) = match map(&journal_event.event, journal_event.cursor) {
                        Step::Send(chunks) => (chunks, false),
                        Step::SendAndEnd(chunks) => (chunks, true),
                    };
                    for chunk in chunks {
                        if sender.send(chunk).await.is_err() {
                            return PumpEnd::ClientGone;
                        }
                    }
                    if end {
                        return PumpEnd::Ended;
                    }
                }
                Some(Err(ended)) => {
                    if let Some(chunk) = on_subscription_end(&ended) {
                        let _ = sender.send(chunk).await;
                    }
                    return PumpEnd::Subscription(ended);
                }
                None => return PumpEnd::Ended,
            },
        }
    }
}

/// Resolves when this master stops being the leader.
pub async fn leadership_lost(node: corral_log::LogNode) {
    let mut metrics = node.metrics();
    while node.is_leader() {
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
