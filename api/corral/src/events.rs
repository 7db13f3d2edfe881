//! `corral events tail`: the native event stream as NDJSON on standard output.

use std::io::Write;

use anyhow::Context;
use futures::StreamExt;

pub(crate) async fn tail(
    master: &str,
    from: Option<&str>,
    topics: Option<&str>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let stream = corral_client::follow_events(&http, master, from, topics).await?;
    let mut stream = std::pin::pin!(stream);
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = stream.next().await {
        out.write_all(&chunk?).context("cannot write to standard output")?;
        out.flush().context("cannot write to standard output")?;
    }
    Ok(())
}
