//! Large answers (`/master/state`, `GET_STATE`, `/master/tasks`, ...) written on a blocking
//! thread straight into the response body, a chunk at a time: the client gets its first
//! bytes while the rest is still being rendered, and no answer is ever held whole in memory.
//! A bounded channel between the writer and the body makes a slow client slow the writer,
//! never grow the master's memory.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use prometheus::Histogram;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Bytes gathered before a chunk goes to the body.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting for a slow client before the writer waits too.
const CHUNKS_IN_FLIGHT: usize = 16;

/// An `io::Write` whose bytes become the response body. Writing fails once the client has
/// gone, which ends the render.
pub(crate) struct BodyWriter {
    sender: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
    /// Time spent waiting for the connection to take chunks.
    waited: Duration,
}

impl BodyWriter {
    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        let started = Instant::now();
        let sent = self.sender.blocking_send(Ok(Bytes::from(chunk)));
        self.waited += started.elapsed();
        sent.map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

/// Where a body's write time and its wait for the client are recorded, for one answer.
pub(crate) struct BodyTimers {
    pub(crate) write: Histogram,
    pub(crate) client_wait: Histogram,
}

impl Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_all(data)?;
        Ok(data.len())
    }

    // serde_json writes everything through `write_all`, a few bytes at a time; the default
    // loops over `write` out of line, which cost a quarter of a big render.
    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.send_buffer()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

/// A JSON response whose body `write` produces on a blocking thread from `input`. A render
/// that fails half-way aborts the body (the client sees a broken transfer, never a
/// truncated document that looks whole) and is logged with its cause.
pub(crate) fn json_response<T: Send + 'static>(
    what: &'static str,
    timers: BodyTimers,
    input: T,
    write: impl FnOnce(&T, &mut BodyWriter) -> serde_json::Result<()> + Send + 'static,
) -> Response {
    let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut writer = BodyWriter {
            sender: sender.clone(),
            buffer: Vec::with_capacity(CHUNK),
            waited: Duration::ZERO,
        };
        let written =
            write(&input, &mut writer).map_err(io::Error::from).and_then(|()| writer.flush());
        // The input can be a copy of the whole state: free it here, off the runtime.
        drop(input);
        match written {
            Ok(()) => {
                timers.write.observe(started.elapsed().as_secs_f64());
                timers.client_wait.observe(writer.waited.as_secs_f64());
            }
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
                tracing::debug!(what, "client left before the answer was written");
            }
            Err(error) => {
                tracing::error!(what, %error, "answer failed half-way; the body is aborted");
                let _ = sender.blocking_send(Err(io::Error::other("the answer failed half-way")));
            }
        }
    });
    let body = Body::from_stream(ReceiverStream::new(receiver));
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
