//! The JSON Schemas of the OpenAPI document (`GET /openapi.json`): one request body per
//! operation and client wire, and the two error shapes. Kept small: the fields the router
//! reads or checks, and the ones the providers' public references mark required; every
//! other field a provider accepts is allowed (`additionalProperties` is left open) and
//! passed on as sent.

use serde_json::{json, Value};

use crate::pipeline::op::{Operation, Wire};

/// The request body schema of a pipeline operation in its client's wire, with the media
/// type it is sent as.
pub fn request_body(op: Operation, client: Wire) -> (&'static str, Value) {
    let json_body = |schema: Value| ("application/json", schema);
    match (op, client) {
        (Operation::Chat, Wire::AnthropicMessages) => json_body(messages()),
        (Operation::CountTokens, _) => json_body(count_tokens()),
        (Operation::Chat, _) => json_body(chat()),
        (Operation::Completion, _) => json_body(completions()),
        (Operation::Responses, _) => json_body(responses()),
        (Operation::Embed, _) => json_body(embeddings()),
        (Operation::EmbedSparse, Wire::TeiSparse) => json_body(tei_sparse()),
        (Operation::EmbedSparse, _) => json_body(sparse()),
        (Operation::Rerank, _) => json_body(rerank()),
        (Operation::ImageGenerate, _) => json_body(images()),
        (Operation::ImageEdit, _) => ("multipart/form-data", image_edit()),
        (Operation::ImageVariation, _) => ("multipart/form-data", image_variation()),
    }
}

/// `model`: any name the router serves (an alias, a namespaced or a pinned
/// `backend/model` form too).
fn model() -> Value {
    json!({"type": "string", "minLength": 1, "description": "A model the router serves: its id, an alias, or `backend/model`."})
}

fn stream() -> Value {
    json!({"type": "boolean", "description": "Answer as server-sent events."})
}

fn tokens() -> Value {
    json!({"type": ["integer", "null"], "minimum": 1})
}

/// A message's content in OpenAI's shape: text, or a list of parts.
fn openai_content() -> Value {
    json!({"anyOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "object", "required": ["type"],
            "properties": {"type": {"type": "string"}}}},
        {"type": "null"}
    ]})
}

/// `POST /v1/chat/completions`.
fn chat() -> Value {
    json!({
        "type": "object",
        "required": ["model", "messages"],
        "properties": {
            "model": model(),
            "messages": {"type": "array", "items": {
                "type": "object",
                "required": ["role"],
                "properties": {
                    "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
                    "content": openai_content(),
                    "name": {"type": "string"},
                    "tool_call_id": {"type": "string"},
                    "tool_calls": {"type": "array", "items": {"type": "object"}}
                }
            }},
            "stream": stream(),
            "stream_options": {"type": ["object", "null"], "properties": {"include_usage": {"type": "boolean"}}},
            "max_tokens": tokens(),
            "max_completion_tokens": tokens(),
            "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
            "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "n": {"type": ["integer", "null"], "minimum": 1},
            "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
            "tools": {"type": "array", "items": {"type": "object", "required": ["type"],
                "properties": {"type": {"type": "string"}}}},
            "tool_choice": {"anyOf": [{"type": "string"}, {"type": "object"}]},
            "reasoning_effort": {"type": ["string", "null"]},
            "user": {"type": "string"}
        },
        "example": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}]}
    })
}

/// `POST /v1/completions`.
fn completions() -> Value {
    json!({
        "type": "object",
        "required": ["model", "prompt"],
        "properties": {
            "model": model(),
            "prompt": {"anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}},
                {"type": "array", "items": {"type": "integer"}},
                {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}
            ]},
            "stream": stream(),
            "max_tokens": tokens(),
            "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
            "user": {"type": "string"}
        },
        "example": {"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon a time", "max_tokens": 16}
    })
}

/// An Anthropic message list.
fn anthropic_messages() -> Value {
    json!({"type": "array", "items": {
        "type": "object",
        "required": ["role", "content"],
        "properties": {
            "role": {"type": "string", "enum": ["user", "assistant"]},
            "content": {"anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "object", "required": ["type"],
                    "properties": {"type": {"type": "string"}}}}
            ]}
        }
    }})
}

fn anthropic_system() -> Value {
    json!({"anyOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "object", "required": ["type", "text"],
            "properties": {"type": {"type": "string", "enum": ["text"]}, "text": {"type": "string"}}}}
    ]})
}

fn anthropic_tools() -> Value {
    json!({"type": "array", "items": {"type": "object", "required": ["name"],
        "properties": {"name": {"type": "string"}, "description": {"type": "string"},
            "input_schema": {"type": "object"}}}})
}

/// `POST /v1/messages`.
fn messages() -> Value {
    json!({
        "type": "object",
        "required": ["model", "messages", "max_tokens"],
        "properties": {
            "model": model(),
            "messages": anthropic_messages(),
            "max_tokens": {"type": "integer", "minimum": 1},
            "system": anthropic_system(),
            "stream": stream(),
            "temperature": {"type": "number", "minimum": 0, "maximum": 1},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1},
            "top_k": {"type": "integer", "minimum": 0},
            "stop_sequences": {"type": "array", "items": {"type": "string"}},
            "tools": anthropic_tools(),
            "tool_choice": {"type": "object", "required": ["type"],
                "properties": {"type": {"type": "string", "enum": ["auto", "any", "tool", "none"]},
                    "name": {"type": "string"}}},
            "thinking": {"type": "object"},
            "metadata": {"type": "object"}
        },
        "example": {"model": "claude-haiku", "max_tokens": 64, "messages": [{"role": "user", "content": "Say hello."}]}
    })
}

/// `POST /v1/messages/count_tokens`.
fn count_tokens() -> Value {
    json!({
        "type": "object",
        "required": ["model", "messages"],
        "properties": {
            "model": model(),
            "messages": anthropic_messages(),
            "system": anthropic_system(),
            "tools": anthropic_tools()
        },
        "example": {"model": "claude-haiku", "messages": [{"role": "user", "content": "Count me."}]}
    })
}

/// `POST /v1/responses`.
fn responses() -> Value {
    json!({
        "type": "object",
        "required": ["model"],
        "properties": {
            "model": model(),
            "input": {"anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "object"}}
            ]},
            "instructions": {"type": ["string", "null"]},
            "previous_response_id": {"type": ["string", "null"]},
            "stream": stream(),
            "store": {"type": ["boolean", "null"]},
            "max_output_tokens": tokens(),
            "tools": {"type": "array", "items": {"type": "object"}},
            "reasoning": {"type": ["object", "null"]},
            "user": {"type": "string"}
        },
        "example": {"model": "gpt-4o-mini", "input": "Say hello."}
    })
}

/// An embedding input: text, texts, or token ids.
fn embedding_input() -> Value {
    json!({"anyOf": [
        {"type": "string"},
        {"type": "array", "minItems": 1, "items": {"type": "string"}},
        {"type": "array", "minItems": 1, "items": {"type": "integer"}},
        {"type": "array", "minItems": 1, "items": {"type": "array", "items": {"type": "integer"}}}
    ]})
}

/// `POST /v1/embeddings`.
fn embeddings() -> Value {
    json!({
        "type": "object",
        "required": ["model", "input"],
        "properties": {
            "model": model(),
            "input": embedding_input(),
            "encoding_format": {"type": "string", "enum": ["float", "base64"]},
            "dimensions": {"type": "integer", "minimum": 1},
            "user": {"type": "string"}
        },
        "example": {"model": "text-embedding-3-small", "input": "hello"}
    })
}

/// `POST /v1/sparse-embeddings` (the router's OpenAI-style envelope over TEI).
fn sparse() -> Value {
    json!({
        "type": "object",
        "required": ["model", "input"],
        "properties": {
            "model": model(),
            "input": {"anyOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": {"type": "string"}}]},
            "truncate": {"type": "boolean"},
            "truncation_direction": {"type": "string", "enum": ["left", "right", "Left", "Right"]},
            "prompt_name": {"type": "string"}
        },
        "example": {"model": "splade", "input": "hello"}
    })
}

/// `POST /embed_sparse` (TEI's own shape; `model` is optional when one model serves it).
fn tei_sparse() -> Value {
    json!({
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "model": model(),
            "inputs": {"anyOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": {"type": "string"}}]},
            "truncate": {"type": "boolean"},
            "truncation_direction": {"type": "string", "enum": ["left", "right", "Left", "Right"]}
        },
        "example": {"model": "splade", "inputs": "hello"}
    })
}

/// `POST /v1/rerank` (Cohere's and Jina's shape).
fn rerank() -> Value {
    json!({
        "type": "object",
        "required": ["model", "query", "documents"],
        "properties": {
            "model": model(),
            "query": {"type": "string", "minLength": 1},
            "documents": {"type": "array", "minItems": 1, "items": {"anyOf": [
                {"type": "string"},
                {"type": "object", "properties": {"text": {"type": "string"}}}
            ]}},
            "top_n": {"type": "integer", "minimum": 1},
            "return_documents": {"type": "boolean"}
        },
        "example": {"model": "bge-reranker", "query": "capital of France", "documents": ["Paris", "Berlin"]}
    })
}

/// `POST /v1/images/generations`.
fn images() -> Value {
    json!({
        "type": "object",
        "required": ["model", "prompt"],
        "properties": {
            "model": model(),
            "prompt": {"type": "string", "minLength": 1, "pattern": "\\S"},
            "n": {"type": "integer", "minimum": 1, "maximum": 10},
            "size": {"type": "string", "pattern": "^(auto|[0-9]+x[0-9]+)$"},
            "quality": {"type": "string", "enum": ["auto", "low", "medium", "high", "standard", "hd"]},
            "response_format": {"type": "string", "enum": ["url", "b64_json"]},
            "output_format": {"type": "string", "enum": ["png", "jpeg", "webp"]},
            "background": {"type": "string", "enum": ["auto", "transparent", "opaque"]},
            "style": {"type": "string", "enum": ["vivid", "natural"]},
            "user": {"type": "string"}
        },
        "example": {"model": "gpt-image-1", "prompt": "a red circle"}
    })
}

/// `POST /v1/images/edits` (multipart).
fn image_edit() -> Value {
    json!({
        "type": "object",
        "required": ["image", "prompt"],
        "properties": {
            "model": {"type": "string"},
            "image": {"type": "string", "format": "binary"},
            "mask": {"type": "string", "format": "binary"},
            "prompt": {"type": "string"},
            "n": {"type": "integer", "minimum": 1, "maximum": 10},
            "size": {"type": "string"},
            "response_format": {"type": "string", "enum": ["url", "b64_json"]}
        },
        "example": {"model": "gpt-image-1", "prompt": "add a hat", "image": "an image file"}
    })
}

/// `POST /v1/images/variations` (multipart).
fn image_variation() -> Value {
    json!({
        "type": "object",
        "required": ["image"],
        "properties": {
            "model": {"type": "string"},
            "image": {"type": "string", "format": "binary"},
            "n": {"type": "integer", "minimum": 1, "maximum": 10},
            "size": {"type": "string"},
            "response_format": {"type": "string", "enum": ["url", "b64_json"]}
        },
        "example": {"model": "gpt-image-1", "image": "an image file"}
    })
}

/// `POST /v1/files` (multipart).
pub fn file_upload() -> Value {
    json!({
        "type": "object",
        "required": ["file", "purpose"],
        "properties": {
            "file": {"type": "string", "format": "binary"},
            "purpose": {"type": "string", "enum": crate::files::PURPOSES}
        }
    })
}

/// The component schemas every document carries: the two error shapes.
pub fn components() -> Value {
    json!({
        "OpenAiError": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["message", "type"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "integer", "null"]}
                }
            }}
        },
        "AnthropicError": {
            "type": "object",
            "required": ["type", "error"],
            "properties": {
                "type": {"type": "string", "enum": ["error"]},
                "error": {
                    "type": "object",
                    "required": ["type", "message"],
                    "properties": {
                        "type": {"type": "string"},
                        "message": {"type": "string"}
                    }
                }
            }
        }
    })
}
