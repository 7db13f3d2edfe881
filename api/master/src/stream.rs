//! Streaming responses: a task pumps events into a bounded channel that the response body
//! drains. When the client goes away the channel closes and the task stops.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use corral_log::{Subscription, SubscriptionEnded, SubscriptionProgress};
use corral_state::auth::AuthMode;
use corral_state::Event;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

/// What one log event becomes on the wire.
pub(crate) enum Step {
    Send(Vec<Bytes>),
    /// Send, then end the stream.
    SendAndEnd(Vec<Bytes>),
}

/// Why a pump stopped, for the caller's clean-up.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PumpEnd {
    ClientGone,
    /// The mapping asked to end, or something outside did (`stop`).
    Ended,
    Subscription(SubscriptionEnded),
}

/// Chunks buffered between the pump and a slow client before the pump waits.
const BODY_BUFFER: usize = 256;

pub(crate) fn channel_body() -> (mpsc::Sender<Bytes>, Body) {
    let (sender, receiver) = mpsc::channel::<Bytes>(BODY_BUFFER);
    let body = Body::from_stream(ReceiverStream::new(receiver).map(Ok::<Bytes, Infallible>));
    (sender, body)
}

/// A `200` whose body is newline-delimited JSON.
pub(crate) fn ndjson_response(body: impl Into<Body>) -> axum::response::Response {
    let mut response = axum::response::Response::new(body.into());
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

/// A line sent when a stream has been quiet for `every`, so a reader can tell a dead master
/// from a quiet one.
pub(crate) struct Heartbeat {
    every: Duration,
    /// Sent again at once whenever it changes (what the line says is news).
    line: watch::Receiver<Bytes>,
}

impl Heartbeat {
    pub(crate) fn fixed(every: Duration, line: Bytes) -> Heartbeat {
        Heartbeat { every, line: watch::channel(line).1 }
    }

    pub(crate) fn watched(every: Duration, line: watch::Receiver<Bytes>) -> Heartbeat {
        Heartbeat { every, line }
    }
}

/// Sends `first`, then every event of `subscription` through `map`, with `heartbeat` every
/// `interval`, until the client leaves, `map` ends it, the subscription ends, or `stop`
/// resolves. `on_end` gets the final frame for a subscription that ended (e.g. "too slow").
pub(crate) async fn pump(
    sender: mpsc::Sender<Bytes>,
    first: Vec<Bytes>,
    mut subscription: Subscription,
    mut map: impl FnMut(&Event, corral_state::Cursor) -> Step + Send,
    heartbeat: Option<Heartbeat>,
    stop: impl std::future::Future<Output = ()> + Send,
    on_subscription_end: impl FnOnce(&SubscriptionEnded) -> Option<Bytes> + Send,
) -> PumpEnd {
    for chunk in first {
        if sender.send(chunk).await.is_err() {
            return PumpEnd::ClientGone;
        }
    }
    let (interval, mut heartbeat_line) = match heartbeat {
        Some(Heartbeat { every, line }) => (every, Some(line)),
        None => (Duration::from_secs(3600), None),
    };
    // A fixed line's sender is gone at once; only a watched one can change.
    let mut line_may_change =
        heartbeat_line.as_ref().is_some_and(|line| line.has_changed().is_ok());
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tokio::pin!(stop);
    loop {
        let line_changed = async {
            match heartbeat_line.as_mut() {
                Some(line) if line_may_change => line.changed().await.is_ok(),
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut stop => return PumpEnd::Ended,
            () = sender.closed() => return PumpEnd::ClientGone,
            changed = line_changed => {
                line_may_change = changed;
                if changed {
                    ticker.reset();
                    if !beat(&sender, heartbeat_line.as_ref()).await {
                        return PumpEnd::ClientGone;
                    }
                }
            }
            _ = ticker.tick() => {
                if !beat(&sender, heartbeat_line.as_ref()).await {
                    return PumpEnd::ClientGone;
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

/// Sends the heartbeat line as it is now, if the stream has one; false once the client left.
async fn beat(sender: &mpsc::Sender<Bytes>, line: Option<&watch::Receiver<Bytes>>) -> bool {
    let Some(line) = line else { return true };
    let chunk = line.borrow().clone();
    sender.send(chunk).await.is_ok()
}

/// Resolves when this master stops being the leader.
pub(crate) async fn leadership_lost(node: corral_log::LogNode) {
    let mut metrics = node.metrics();
    while node.is_leader() {
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// Kinds of subscriber counted by [`OpenStreams`] (the scheduler streams are counted by
/// `SchedulerStreams`).
pub(crate) const STREAM_KINDS: [&str; 2] = ["events", "operator"];

/// The open event streams by kind and how far each has read the log, for the subscriber and
/// lag metrics. Cheap to clone.
#[derive(Clone, Default)]
pub struct OpenStreams {
    streams: Arc<Mutex<BTreeMap<u64, (&'static str, SubscriptionProgress)>>>,
    next_id: Arc<AtomicU64>,
}

/// Removes its stream from [`OpenStreams`] when dropped, however the stream ends.
pub(crate) struct OpenStream {
    streams: OpenStreams,
    id: u64,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.streams.lock().remove(&self.id);
    }
}

impl OpenStreams {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<u64, (&'static str, SubscriptionProgress)>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a stream of `kind` (one of [`STREAM_KINDS`]) until the guard is dropped.
    pub(crate) fn open(&self, kind: &'static str, progress: SubscriptionProgress) -> OpenStream {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, (kind, progress));
        OpenStream { streams: self.clone(), id }
    }

    /// Sets the subscriber count and the slowest subscriber's lag of every kind.
    pub(crate) fn set_metrics(&self, metrics: &crate::metrics::Metrics, applied: u64) {
        let mut by_kind: BTreeMap<&'static str, (i64, u64)> =
            STREAM_KINDS.iter().map(|kind| (*kind, (0, 0))).collect();
        for (kind, progress) in self.lock().values() {
            let entry = by_kind.entry(kind).or_default();
            entry.0 += 1;
            entry.1 = entry.1.max(applied.saturating_sub(progress.index()));
        }
        for (kind, (count, lag)) in by_kind {
            metrics.stream_subscribers.with_label_values(&[kind]).set(count);
            metrics
                .stream_lag_events
                .with_label_values(&[kind])
                .set(i64::try_from(lag).unwrap_or(i64::MAX));
        }
    }
}

/// How many event streams each client holds open, against one cap per client, so that one
/// client cannot take every subscriber slot (or memory) of a master. A client is its IP
/// address and, with access control on, also its authenticated principal. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct ClientStreams {
    open: Arc<Mutex<BTreeMap<String, usize>>>,
}

/// A client's right to ask for a stream, put in every request's extensions by the request
/// middleware; the streaming routes call [`StreamClient::admit`] before they start anything.
#[derive(Clone)]
pub(crate) struct StreamClient {
    pub(crate) client: String,
    pub(crate) limit: usize,
    pub(crate) streams: ClientStreams,
    /// `corral_http_auth_denied_total`, for a cap reached with access control on.
    pub(crate) denied: prometheus::IntCounterVec,
}

/// One admitted stream; dropping it (however the stream ends) frees its places.
pub(crate) struct AdmittedStream {
    streams: ClientStreams,
    keys: Vec<String>,
}

impl Drop for AdmittedStream {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(PoisonError::into_inner);
        for key in &self.keys {
            if let Some(count) = open.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    open.remove(key);
                }
            }
        }
    }
}

/// The key a principal's streams are counted under, beside its client addresses' (no
/// address starts so).
fn principal_key(principal: &str) -> String {
    format!("principal {principal}")
}

impl StreamClient {
    /// A place for one more stream, or 429 naming the cap when the client holds them all.
    /// With access control on, the authenticated principal's streams are counted too, from
    /// every address together, so a principal cannot pass the cap by spreading its streams.
    pub(crate) fn admit(&self) -> Result<AdmittedStream, crate::error::ApiError> {
        self.admit_counting(true)
    }

    /// As `admit`, by address only: every agent of a cluster may share one join token's
    /// principal, and each holds its own stream.
    pub(crate) fn admit_agent(&self) -> Result<AdmittedStream, crate::error::ApiError> {
        self.admit_counting(false)
    }

    fn admit_counting(
        &self,
        per_principal: bool,
    ) -> Result<AdmittedStream, crate::error::ApiError> {
        let caller = crate::auth::current_caller().filter(|caller| caller.mode != AuthMode::Off);
        let principal = caller
            .as_ref()
            .filter(|_| per_principal)
            .as_ref()
            .and_then(|caller| caller.principal.clone().or_else(|| caller.identity.clone()));
        let mut keys = vec![self.client.clone()];
        keys.extend(principal.as_deref().map(principal_key));
        let mut open = self.streams.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(full) =
            keys.iter().find(|key| open.get(*key).is_some_and(|count| *count >= self.limit))
        {
            if let Some(caller) = &caller {
                self.denied.with_label_values(&["too_many_streams", &caller.route]).inc();
            }
            return Err(crate::error::ApiError::TooManyStreams {
                client: full.clone(),
                limit: self.limit,
            });
        }
        for key in &keys {
            *open.entry(key.clone()).or_insert(0) += 1;
        }
        Ok(AdmittedStream { streams: self.streams.clone(), keys })
    }
}
