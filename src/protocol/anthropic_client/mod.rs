//! Anthropic's Messages API (`POST /v1/messages`) translated to and from OpenAI's chat
//! format, so Anthropic clients (Claude Code, the Anthropic SDKs) work against every
//! backend: system prompt, text and image blocks, base64 PDF documents (as OpenAI `file`
//! parts), tool use and tool results, tool choice, stop sequences, usage; streams become
//! Anthropic's event sequence (`message_start`, `content_block_start`, `ping`, deltas,
//! `content_block_stop`, `message_delta`, `message_stop`). Thinking blocks in the history
//! are dropped (OpenAI-compatible servers cannot take them back); `system` messages inside
//! `messages` (Claude Code sends them) stay where they are; Claude Code's per-request
//! billing block is left out of the system prompt, so it does not defeat the prompt cache
//! of self-hosted servers.

mod billing;
mod reply;
mod request;
mod stream;
#[cfg(test)]
mod tests;

pub use billing::{is_billing_block, strip_billing_header, system_for_hashing};
pub use reply::{error_body, error_type, from_openai_response};
pub use request::to_openai_request;
pub use stream::StreamTranslator;
