//! Gemini `generateContent` replies of image models as OpenAI images replies.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::super::input::{parse_reply, to_bytes};
use super::{format_mime, REFUSED};

/// The finish reasons that mean Gemini withheld the output on policy grounds.
const REFUSALS: [&str; 8] = [
    "SAFETY",
    "IMAGE_SAFETY",
    "PROHIBITED_CONTENT",
    "IMAGE_PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "RECITATION",
    "IMAGE_RECITATION",
];

/// At most this many characters of Gemini's text go into a no-image error.
const QUOTE: usize = 200;

/// OpenAI's images reply for one Gemini `generateContent` reply; see
/// [`from_gemini_replies`].
pub fn from_gemini(reply: &[u8], created: u64) -> Result<Bytes, String> {
    from_gemini_replies(&[reply], created)
}

/// OpenAI's images reply, `{"created", "data": [{"b64_json", "revised_prompt"?}],
/// "output_format"?, "usage"?}`, for the Gemini replies to the `n` requests
/// [`to_gemini`](super::to_gemini) asked for, images in reply order.
///
/// Each candidate's `inlineData` image parts become `data` items (its base64 is copied, not
/// decoded); the candidate's text parts, joined, are their `revised_prompt` (Gemini's words
/// beside the image, which may only be "Here is your image"). Parts marked `thought` (the
/// draft images and reasoning of thinking models such as `gemini-3-pro-image-preview`) are
/// skipped. `output_format` is given when every image has the same PNG, JPEG or WebP type;
/// `usageMetadata` of all replies, summed, becomes `usage` (`input_tokens` the prompt's,
/// `output_tokens` the candidates' and thoughts', split by modality in the `_details`).
///
/// A reply without an image fails the whole answer, naming why: a message starting with
/// [`REFUSED`] for a blocked prompt (`promptFeedback.blockReason`) or a candidate withheld
/// on policy grounds (`IMAGE_SAFETY`, `PROHIBITED_CONTENT`, …), otherwise one naming the
/// `finishReason` (`NO_IMAGE`, `MAX_TOKENS`, …) and quoting any text Gemini gave instead.
pub fn from_gemini_replies(replies: &[&[u8]], created: u64) -> Result<Bytes, String> {
    let mut data = Vec::new();
    let mut usage: Option<Usage> = None;
    let mut formats: Vec<Option<&'static str>> = Vec::new();
    let parsed = replies
        .iter()
        .map(|r| parse_reply::<Reply>(r, "gemini reply"))
        .collect::<Result<Vec<_>, String>>()?;
    for (r, reply) in parsed.iter().enumerate() {
        let before = data.len();
        for candidate in &reply.candidates {
            images_of(candidate, &mut data, &mut formats)?;
        }
        if data.len() == before {
            let which = match replies.len() {
                1 => String::new(),
                n => format!(" (reply {} of {n})", r + 1),
            };
            return Err(format!("{}{which}", no_image(reply)));
        }
        if let Some(u) = &reply.usage {
            usage.get_or_insert_with(Usage::default).add(u);
        }
    }
    let output_format = formats
        .first()
        .copied()
        .flatten()
        .filter(|f| formats.iter().all(|g| *g == Some(*f)));
    Ok(to_bytes(&ImagesReply {
        created,
        data,
        output_format,
        usage: usage.map(Usage::finish),
    }))
}

/// Adds a candidate's images to `data` (and their MIME types to `formats`).
fn images_of<'a>(
    candidate: &Candidate<'a>,
    data: &mut Vec<Image<'a>>,
    formats: &mut Vec<Option<&'static str>>,
) -> Result<(), String> {
    let parts: Vec<&Part> = candidate
        .content
        .iter()
        .flat_map(|c| &c.parts)
        .filter(|p| !p.thought.unwrap_or(false))
        .collect();
    let text: String = parts.iter().filter_map(|p| p.text.as_deref()).collect();
    let text = text.trim();
    for part in &parts {
        let Some(inline) = &part.inline_data else {
            continue;
        };
        let mime = inline.mime_type.as_deref().unwrap_or("image/png");
        if !mime.starts_with("image/") {
            continue;
        }
        let b64 = inline
            .data
            .filter(|d| d.get().starts_with('"'))
            .ok_or("gemini reply: an inlineData image has no data string")?;
        formats.push(
            ["png", "jpeg", "webp"]
                .into_iter()
                .find(|w| format_mime(w) == Some(mime)),
        );
        data.push(Image {
            b64_json: b64,
            revised_prompt: (!text.is_empty()).then(|| text.to_string()),
        });
    }
    Ok(())
}

/// Why a reply has no image.
fn no_image(reply: &Reply) -> String {
    if let Some(reason) = reply
        .prompt_feedback
        .as_ref()
        .and_then(|f| f.block_reason.as_deref())
    {
        return format!("{REFUSED}: the prompt was blocked (blockReason {reason})");
    }
    let Some(candidate) = reply.candidates.first() else {
        return "gemini reply has no candidates and no image".into();
    };
    let reason = candidate.finish_reason.as_deref().unwrap_or("(none)");
    let message = candidate
        .finish_message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    if REFUSALS.contains(&reason) {
        return format!("{REFUSED} (finishReason {reason}){message}");
    }
    let text: String = reply
        .candidates
        .iter()
        .flat_map(|c| c.content.iter().flat_map(|c| &c.parts))
        .filter(|p| !p.thought.unwrap_or(false))
        .filter_map(|p| p.text.as_deref())
        .collect();
    let text = text.trim();
    let quote = if text.is_empty() {
        String::new()
    } else {
        let cut: String = text.chars().take(QUOTE).collect();
        let more = if cut.len() < text.len() { "…" } else { "" };
        format!("; it answered in text: {cut:?}{more}")
    };
    format!("gemini returned no image (finishReason {reason}){message}{quote}")
}

// ---------------------------------------------------------------------------------------
// Wire types

#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(borrow, default)]
    candidates: Vec<Candidate<'a>>,
    #[serde(rename = "promptFeedback", default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(rename = "usageMetadata", default)]
    usage: Option<UsageMetadata>,
}

#[derive(Deserialize)]
struct Candidate<'a> {
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(rename = "finishReason", default)]
    finish_reason: Option<String>,
    #[serde(rename = "finishMessage", default)]
    finish_message: Option<String>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(borrow, default)]
    parts: Vec<Part<'a>>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(default)]
    text: Option<String>,
    #[serde(rename = "inlineData", alias = "inline_data", borrow, default)]
    inline_data: Option<InlineData<'a>>,
    #[serde(default)]
    thought: Option<bool>,
}

#[derive(Deserialize)]
struct InlineData<'a> {
    #[serde(rename = "mimeType", alias = "mime_type", borrow, default)]
    mime_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct PromptFeedback {
    #[serde(rename = "blockReason", default)]
    block_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct UsageMetadata {
    #[serde(rename = "promptTokenCount", default)]
    prompt: u64,
    #[serde(rename = "candidatesTokenCount", default)]
    candidates: u64,
    #[serde(rename = "thoughtsTokenCount", default)]
    thoughts: u64,
    #[serde(rename = "totalTokenCount", default)]
    total: Option<u64>,
    #[serde(rename = "promptTokensDetails", default)]
    prompt_details: Vec<ModalityCount>,
    #[serde(rename = "candidatesTokensDetails", default)]
    candidates_details: Vec<ModalityCount>,
}

#[derive(Deserialize)]
struct ModalityCount {
    #[serde(default)]
    modality: String,
    #[serde(rename = "tokenCount", default)]
    token_count: u64,
}

/// The image tokens of a modality breakdown.
fn image_tokens(details: &[ModalityCount]) -> u64 {
    details
        .iter()
        .filter(|d| d.modality == "IMAGE")
        .map(|d| d.token_count)
        .sum()
}

#[derive(Serialize)]
struct ImagesReply<'a> {
    created: u64,
    data: Vec<Image<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct Image<'a> {
    b64_json: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    revised_prompt: Option<String>,
}

/// OpenAI's images `usage`.
#[derive(Serialize, Default)]
struct Usage {
    total_tokens: u64,
    input_tokens: u64,
    output_tokens: u64,
    input_tokens_details: TokenDetails,
    output_tokens_details: TokenDetails,
}

#[derive(Serialize, Default)]
struct TokenDetails {
    text_tokens: u64,
    image_tokens: u64,
}

impl Usage {
    fn add(&mut self, u: &UsageMetadata) {
        let output = u.candidates + u.thoughts;
        self.input_tokens += u.prompt;
        self.output_tokens += output;
        self.total_tokens += u.total.unwrap_or(u.prompt + output);
        let input_images = image_tokens(&u.prompt_details).min(u.prompt);
        self.input_tokens_details.image_tokens += input_images;
        let output_images = image_tokens(&u.candidates_details).min(output);
        self.output_tokens_details.image_tokens += output_images;
    }

    /// Text tokens are what is not image tokens.
    fn finish(mut self) -> Usage {
        self.input_tokens_details.text_tokens =
            self.input_tokens - self.input_tokens_details.image_tokens;
        self.output_tokens_details.text_tokens =
            self.output_tokens - self.output_tokens_details.image_tokens;
        self
    }
}
