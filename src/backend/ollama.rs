//! Ollama's native API, addressed: `POST /api/chat`, `POST /api/embed` and `GET /api/tags`
//! (the translations are in `crate::protocol::ollama`).

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Full;
use serde::Deserialize;

use super::OpenAiCompat;

/// An Ollama server spoken to natively.
#[derive(Debug)]
pub struct Ollama {
    /// Headers, credentials and the server root.
    pub http: OpenAiCompat,
    tags_uri: Uri,
}

impl Ollama {
    /// Prepares the native endpoints of `http`'s server.
    pub fn new(http: OpenAiCompat) -> Result<Ollama, String> {
        let parse = |p: &str| http.endpoint.uri(p);
        Ok(Ollama {
            tags_uri: parse("/api/tags")?,
            http,
        })
    }

    /// The `/api/tags` request (model list).
    pub fn tags_request(&self) -> Request<Full<Bytes>> {
        self.http
            .endpoint
            .get(self.tags_uri.clone(), "continuum-discovery")
    }
}

/// Model names from an `/api/tags` answer.
pub fn parse_tags(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct Tags {
        models: Vec<Tag>,
    }
    #[derive(Deserialize)]
    struct Tag {
        name: String,
    }
    let tags: Tags =
        serde_json::from_slice(body).map_err(|e| format!("not an Ollama model list: {e}"))?;
    Ok(tags.models.into_iter().map(|t| t.name).collect())
}
