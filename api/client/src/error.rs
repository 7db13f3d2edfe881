/// Why a request to a master did not give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("{url} answered {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("{url}: {problem}")]
    Protocol { url: String, problem: String },
}

impl Error {
    pub(crate) async fn from_response(url: &str, response: reqwest::Response) -> Error {
        let status = response.status().as_u16();
        let body = match response.text().await {
            Ok(text) => text,
            Err(error) => format!("(the body could not be read: {error})"),
        };
        Error::Status { url: url.to_owned(), status, body }
    }
}
