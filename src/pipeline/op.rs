//! What a request asks for, named once: the operation, the wire format the client speaks,
//! and the one route table (method, path, operation, client wire, scope, error shape) that
//! the HTTP edge mounts and that access control, metrics and stats read. Nothing else in
//! the router looks at a request's path to decide what it is.

use http::Method;

use crate::auth::Need;

/// An operation the pipeline routes to a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// A chat turn (OpenAI chat completions, Anthropic messages).
    Chat,
    /// A legacy text completion.
    Completion,
    /// Counting a prompt's tokens (Anthropic `count_tokens`).
    CountTokens,
    /// Dense embeddings.
    Embed,
    /// Sparse embeddings.
    EmbedSparse,
    /// Reranking documents against a query.
    Rerank,
    /// OpenAI's Responses API (a chat turn with stored conversation state).
    Responses,
    /// Image generation from a prompt.
    ImageGenerate,
    /// Image edits (multipart: image, mask, prompt).
    ImageEdit,
    /// Image variations (multipart: image).
    ImageVariation,
}

impl Operation {
    /// The API-key scope the operation needs.
    pub const fn need(self) -> Need {
        match self {
            Operation::Chat
            | Operation::Completion
            | Operation::CountTokens
            | Operation::Responses => Need::Chat,
            Operation::Embed | Operation::EmbedSparse | Operation::Rerank => Need::Embeddings,
            Operation::ImageGenerate | Operation::ImageEdit | Operation::ImageVariation => {
                Need::Images
            }
        }
    }

    /// Whether the request body is multipart (passed through as bytes).
    pub fn multipart(self) -> bool {
        matches!(self, Operation::ImageEdit | Operation::ImageVariation)
    }

    /// Whether the operation is held to `timeouts.request.image_generation`.
    pub fn makes_images(self) -> bool {
        matches!(
            self,
            Operation::ImageGenerate | Operation::ImageEdit | Operation::ImageVariation
        )
    }

    /// Whether the request may ask for a stream.
    pub fn streams(self) -> bool {
        matches!(
            self,
            Operation::Chat | Operation::Completion | Operation::Responses
        )
    }
}

/// A wire format: the shape of one API's requests, replies, streams and errors. Clients
/// speak one; each backend speaks one per operation (see `Backend::wire_for`). Translation
/// goes client wire → the operation's pivot → backend wire, and back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wire {
    /// OpenAI `POST /v1/chat/completions` (the chat pivot).
    OpenAiChat,
    /// OpenAI `POST /v1/completions`.
    OpenAiCompletions,
    /// OpenAI `POST /v1/responses`.
    OpenAiResponses,
    /// OpenAI `POST /v1/embeddings` (the embeddings pivot).
    OpenAiEmbeddings,
    /// Anthropic `POST /v1/messages`.
    AnthropicMessages,
    /// Anthropic `POST /v1/messages/count_tokens` (the count pivot).
    AnthropicCountTokens,
    /// Gemini `generateContent` / `streamGenerateContent?alt=sse`.
    GeminiGenerate,
    /// Gemini `countTokens`.
    GeminiCountTokens,
    /// Gemini `batchEmbedContents`.
    GeminiEmbed,
    /// Ollama `POST /api/chat` (NDJSON streams).
    OllamaChat,
    /// Ollama `POST /api/embed`.
    OllamaEmbed,
    /// Cohere/Jina-shaped `POST /v1/rerank` (vLLM, llama.cpp, Jina; the rerank pivot).
    Rerank,
    /// text-embeddings-inference `POST /rerank`.
    TeiRerank,
    /// text-embeddings-inference `POST /embed_sparse` (the sparse pivot).
    TeiSparse,
    /// The router's OpenAI-style `POST /v1/sparse-embeddings`.
    OpenAiSparse,
    /// OpenAI `POST /v1/images/generations` (the images pivot).
    OpenAiImages,
    /// OpenAI `POST /v1/images/edits` (multipart).
    OpenAiImageEdits,
    /// OpenAI `POST /v1/images/variations` (multipart).
    OpenAiImageVariations,
    /// Gemini image models' `generateContent`.
    GeminiImages,
    /// Counted by the router itself (tokenizer tiers), for backends that cannot count.
    LocalCount,
}

impl Wire {
    /// Errors in this wire are Anthropic-shaped.
    pub fn error_shape(self) -> ErrorShape {
        match self {
            Wire::AnthropicMessages | Wire::AnthropicCountTokens => ErrorShape::Anthropic,
            _ => ErrorShape::OpenAi,
        }
    }
}

/// The shape of the error bodies a client expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"error":{"message","type","param","code"}}`.
    OpenAi,
    /// `{"type":"error","error":{"type","message"}}`.
    Anthropic,
}

/// What serves a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// The pipeline, for this operation.
    Op(Operation),
    /// `GET /v1/models`.
    ListModels,
    /// `GET /v1/models/{id}`.
    GetModel,
    /// `GET /v1/responses/{id}`.
    GetResponse,
    /// `DELETE /v1/responses/{id}`.
    DeleteResponse,
    /// `GET /v1/responses/{id}/input_items`.
    ListInputItems,
    /// `POST /v1/files`.
    UploadFile,
    /// `GET /v1/files`.
    ListFiles,
    /// `GET /v1/files/{id}`.
    GetFile,
    /// `GET /v1/files/{id}/content`.
    FileContent,
    /// `DELETE /v1/files/{id}`.
    DeleteFile,
}

/// One route of the client API.
#[derive(Debug)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// Path as mounted (also the metrics' `endpoint` label).
    pub path: &'static str,
    /// What serves it.
    pub handler: Handler,
    /// The wire the client speaks there.
    pub client: Wire,
    /// The API-key scope it needs.
    pub need: Need,
    /// Label for metrics and stats (aliases share their canonical path's).
    pub endpoint: &'static str,
}

impl RouteSpec {
    /// The pipeline operation, for routes the pipeline serves.
    pub fn op(&self) -> Option<Operation> {
        match self.handler {
            Handler::Op(op) => Some(op),
            _ => None,
        }
    }

    /// The error shape of this route's client.
    pub fn error_shape(&self) -> ErrorShape {
        self.client.error_shape()
    }
}

const fn post(
    path: &'static str,
    op: Operation,
    client: Wire,
    endpoint: &'static str,
) -> RouteSpec {
    RouteSpec {
        method: Method::POST,
        path,
        handler: Handler::Op(op),
        client,
        need: op.need(),
        endpoint,
    }
}

const fn other(method: Method, path: &'static str, handler: Handler, need: Need) -> RouteSpec {
    RouteSpec {
        method,
        path,
        handler,
        client: Wire::OpenAiChat,
        need,
        endpoint: path,
    }
}

/// Every client route, in one table.
pub static ROUTES: &[RouteSpec] = &[
    post(
        "/v1/chat/completions",
        Operation::Chat,
        Wire::OpenAiChat,
        "/v1/chat/completions",
    ),
    post(
        "/v1/completions",
        Operation::Completion,
        Wire::OpenAiCompletions,
        "/v1/completions",
    ),
    post(
        "/v1/embeddings",
        Operation::Embed,
        Wire::OpenAiEmbeddings,
        "/v1/embeddings",
    ),
    post(
        "/v1/messages",
        Operation::Chat,
        Wire::AnthropicMessages,
        "/v1/messages",
    ),
    post(
        "/anthropic/v1/messages",
        Operation::Chat,
        Wire::AnthropicMessages,
        "/v1/messages",
    ),
    post(
        "/v1/messages/count_tokens",
        Operation::CountTokens,
        Wire::AnthropicCountTokens,
        "/v1/messages/count_tokens",
    ),
    post(
        "/anthropic/v1/messages/count_tokens",
        Operation::CountTokens,
        Wire::AnthropicCountTokens,
        "/v1/messages/count_tokens",
    ),
    post("/v1/rerank", Operation::Rerank, Wire::Rerank, "/v1/rerank"),
    post("/rerank", Operation::Rerank, Wire::Rerank, "/v1/rerank"),
    post(
        "/v1/sparse-embeddings",
        Operation::EmbedSparse,
        Wire::OpenAiSparse,
        "/v1/sparse-embeddings",
    ),
    post(
        "/embed_sparse",
        Operation::EmbedSparse,
        Wire::TeiSparse,
        "/embed_sparse",
    ),
    post(
        "/v1/images/generations",
        Operation::ImageGenerate,
        Wire::OpenAiImages,
        "/v1/images/generations",
    ),
    post(
        "/v1/images/edits",
        Operation::ImageEdit,
        Wire::OpenAiImageEdits,
        "/v1/images/edits",
    ),
    post(
        "/v1/images/variations",
        Operation::ImageVariation,
        Wire::OpenAiImageVariations,
        "/v1/images/variations",
    ),
    post(
        "/v1/responses",
        Operation::Responses,
        Wire::OpenAiResponses,
        "/v1/responses",
    ),
    other(
        Method::GET,
        "/v1/responses/{id}",
        Handler::GetResponse,
        Need::Chat,
    ),
    other(
        Method::DELETE,
        "/v1/responses/{id}",
        Handler::DeleteResponse,
        Need::Chat,
    ),
    other(
        Method::GET,
        "/v1/responses/{id}/input_items",
        Handler::ListInputItems,
        Need::Chat,
    ),
    other(Method::POST, "/v1/files", Handler::UploadFile, Need::Files),
    other(Method::GET, "/v1/files", Handler::ListFiles, Need::Files),
    other(Method::GET, "/v1/files/{id}", Handler::GetFile, Need::Files),
    other(
        Method::GET,
        "/v1/files/{id}/content",
        Handler::FileContent,
        Need::Files,
    ),
    other(
        Method::DELETE,
        "/v1/files/{id}",
        Handler::DeleteFile,
        Need::Files,
    ),
    other(Method::GET, "/v1/models", Handler::ListModels, Need::Read),
    other(
        Method::GET,
        "/v1/models/{*id}",
        Handler::GetModel,
        Need::Read,
    ),
];

/// The route mounted at `path` (as axum matched it) for `method`.
pub fn route(method: &Method, path: &str) -> Option<&'static RouteSpec> {
    ROUTES.iter().find(|r| r.path == path && r.method == method)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_unique_and_found() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(
                ROUTES[..i]
                    .iter()
                    .all(|o| o.path != r.path || o.method != r.method),
                "{} twice",
                r.path
            );
            assert!(std::ptr::eq(route(&r.method, r.path).unwrap(), r));
            if let Some(op) = r.op() {
                assert_eq!(op.need(), r.need);
            }
        }
        assert_eq!(
            route(&Method::POST, "/anthropic/v1/messages")
                .unwrap()
                .error_shape(),
            ErrorShape::Anthropic
        );
        assert!(route(&Method::GET, "/v1/chat/completions").is_none());
    }
}
