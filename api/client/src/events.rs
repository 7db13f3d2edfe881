//! The native event stream, `GET /corral/v1/events`, as NDJSON lines.

use futures::{Stream, StreamExt};

use crate::Error;

/// The raw NDJSON body of `/corral/v1/events` on `master` after `from` (a cursor
/// `index-seq`), limited to `topics` (comma-separated) when given, following new events.
pub async fn follow_events(
    http: &reqwest::Client,
    master: &str,
    from: Option<&str>,
    topics: Option<&str>,
) -> Result<impl Stream<Item = Result<bytes::Bytes, Error>>, Error> {
    let url = format!("http://{master}/corral/v1/events");
    let mut query = vec![("format", "ndjson")];
    query.extend(from.map(|from| ("from", from)));
    query.extend(topics.map(|topics| ("topic", topics)));
    let response = http
        .get(&url)
        .query(&query)
        .send()
        .await
        .map_err(|source| Error::Unreachable { url: url.clone(), source })?;
    if !response.status().is_success() {
        return Err(Error::from_response(&url, response).await);
    }
    Ok(response.bytes_stream().map(move |chunk| {
        chunk.map_err(|error| Error::Protocol {
            url: url.clone(),
            problem: format!("the stream broke: {error}"),
        })
    }))
}
