//! A master's native event stream (`/corral/v1/events?format=ndjson`) read one logged event
//! at a time, as the process tests wait for what the log recorded.

use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::Value;

use corral_state::Event;

pub struct LoggedEvents {
    body: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: Vec<u8>,
}

impl LoggedEvents {
    /// Opens `url`, which must answer 200 with an NDJSON event stream.
    pub async fn open(url: &str) -> LoggedEvents {
        let response = reqwest::get(url).await.expect("event stream");
        assert_eq!(response.status(), 200, "{url}");
        let body = response.bytes_stream().map(|chunk| chunk.map(|bytes| bytes.to_vec())).boxed();
        LoggedEvents { body, buffer: Vec::new() }
    }

    /// The next event the stream carries (heartbeats and other lines skipped); past
    /// `deadline` it panics with `waiting_for()`.
    pub async fn next(
        &mut self,
        deadline: tokio::time::Instant,
        waiting_for: impl Fn() -> String,
    ) -> Event {
        let line = self.next_line(deadline, waiting_for).await;
        serde_json::from_value(line["event"].clone()).expect("next_line returns events")
    }

    /// The next event's whole line: its `cursor`, `topic`, `kind` and `event`.
    pub async fn next_line(
        &mut self,
        deadline: tokio::time::Instant,
        waiting_for: impl Fn() -> String,
    ) -> Value {
        loop {
            while let Some(newline) = self.buffer.iter().position(|&byte| byte == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=newline).collect();
                let Ok(value) = serde_json::from_slice::<Value>(&line) else { continue };
                if serde_json::from_value::<Event>(value["event"].clone()).is_ok() {
                    return value;
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .unwrap_or_else(|_| panic!("{} in time", waiting_for()))
                .expect("stream open")
                .expect("chunk");
            self.buffer.extend_from_slice(&chunk);
        }
    }
}
