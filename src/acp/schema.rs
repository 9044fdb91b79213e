//! The ACP messages the agent reads, as typed structs (checked against the protocol's
//! schema, version 1). What it sends is built with `json!` at the one place each message
//! is made, in the schema's field names.

use serde::Deserialize;
use serde_json::Value;

use super::rpc::RpcError;

/// Reads a method's params into `T`; a mismatch is `-32602` naming the field.
pub fn params<T: serde::de::DeserializeOwned>(method: &str, v: Value) -> Result<T, RpcError> {
    let v = if v.is_null() {
        Value::Object(Default::default())
    } else {
        v
    };
    serde_json::from_value(v).map_err(|e| RpcError::params(format!("{method}: {e}")))
}

/// `initialize` params.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Initialize {
    /// The newest version the client speaks.
    pub protocol_version: u64,
    /// What the client can do for the agent.
    #[serde(default)]
    pub client_capabilities: ClientCapabilities,
}

/// The client's capabilities (what tools the agent can offer).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCapabilities {
    /// File system access.
    #[serde(default)]
    pub fs: FsCapabilities,
    /// `terminal/*` methods.
    #[serde(default)]
    pub terminal: bool,
}

/// `clientCapabilities.fs`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FsCapabilities {
    /// `fs/read_text_file`.
    #[serde(default)]
    pub read_text_file: bool,
    /// `fs/write_text_file`.
    #[serde(default)]
    pub write_text_file: bool,
}

/// `session/new` params.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSession {
    /// The working directory (absolute).
    pub cwd: String,
    /// MCP servers to connect for this session.
    pub mcp_servers: Vec<McpServer>,
}

/// `session/load` params.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadSession {
    /// The session to load.
    pub session_id: String,
    /// The working directory (absolute).
    pub cwd: String,
    /// MCP servers to connect for this session.
    pub mcp_servers: Vec<McpServer>,
}

/// An MCP server the client names: stdio (no `type`), `http` or `sse`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct McpServer {
    /// Its name (the prefix of its tools' names).
    pub name: String,
    /// `http` or `sse`; absent for stdio.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The program to run (stdio).
    pub command: Option<String>,
    /// Its arguments (stdio).
    #[serde(default)]
    pub args: Vec<String>,
    /// Its environment (stdio).
    #[serde(default)]
    pub env: Vec<NameValue>,
    /// Its URL (http).
    pub url: Option<String>,
    /// Headers to send (http).
    #[serde(default)]
    pub headers: Vec<NameValue>,
}

/// An environment variable or a header.
#[derive(Debug, Clone, Deserialize)]
pub struct NameValue {
    /// The name.
    pub name: String,
    /// The value.
    pub value: String,
}

/// Params naming only a session (`session/cancel`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRef {
    /// The session.
    pub session_id: String,
}

/// `session/prompt` params.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prompt {
    /// The session.
    pub session_id: String,
    /// The user's message.
    pub prompt: Vec<ContentBlock>,
}

/// A content block of a prompt.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image, base64.
    Image {
        /// Base64 data.
        data: String,
        /// Its media type.
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
    /// Audio (not offered; refused).
    Audio {},
    /// A link to a resource the client did not inline.
    ResourceLink {
        /// Its URI.
        uri: String,
        /// Its name.
        name: String,
    },
    /// A resource the client inlined (an open file, a selection).
    Resource {
        /// Its contents.
        resource: EmbeddedResource,
    },
}

/// An embedded resource's contents: text, or a base64 blob.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedResource {
    /// Its URI.
    pub uri: String,
    /// Its text.
    pub text: Option<String>,
    /// Its media type.
    pub mime_type: Option<String>,
    /// Its bytes, base64 (for binary resources).
    pub blob: Option<String>,
}

/// `session/set_mode` params.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetMode {
    /// The session.
    pub session_id: String,
    /// The mode.
    pub mode_id: String,
}

/// `session/set_config_option` params.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetConfigOption {
    /// The session.
    pub session_id: String,
    /// The option (`model` or `mode`).
    pub config_id: String,
    /// Its new value.
    pub value: Value,
}

/// `session/set_model` params (the unstable method some clients still send).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetModel {
    /// The session.
    pub session_id: String,
    /// The model.
    pub model_id: String,
}

/// `authenticate` params.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authenticate {
    /// The method chosen (one of `initialize`'s `authMethods`).
    pub method_id: String,
}

/// The client's answer to `session/request_permission`.
#[derive(Debug, Deserialize)]
pub struct PermissionAnswer {
    /// `selected` (with an option) or `cancelled`.
    pub outcome: PermissionOutcome,
}

/// What the user chose.
#[derive(Debug, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PermissionOutcome {
    /// One of the options offered.
    Selected {
        /// Its id.
        #[serde(rename = "optionId")]
        option_id: String,
    },
    /// The prompt was cancelled.
    Cancelled,
}
