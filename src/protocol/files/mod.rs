//! Uploaded files referred to by id in chat requests (the router's Files API): which ids a
//! request refers to, and the request with each reference replaced by content the model
//! takes, in the client's own wire, so the translators after it never see a file id.
//!
//! A reference is OpenAI chat's `{"type":"file","file":{"file_id"}}` (and the original
//! Continuum Router's `{"type":"image_file","image_file":{"file_id"}}`), an Anthropic
//! `document` or `image` block with a `{"type":"file","file_id"}` source, or a Responses
//! `input_file` / `input_image` part with a `file_id`. What replaces it depends on the file,
//! not on the part that named it: UTF-8 text becomes a text part (`<file name>:\n<text>`),
//! a PNG, JPEG, GIF or WebP image a base64 image part, a PDF the wire's document part when
//! the model reads PDFs ([`Caps::native_pdf`]) or else a text part with its extracted
//! text; anything else is refused.
//!
//! Pure: the caller loads the files (only those of the request's owner, so another
//! owner's id is simply not found) and picks the caps for the chosen backend. PDF text
//! extraction is CPU work proportional to the document: run [`resolve`] off the async
//! executor when PDFs may need extracting.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::Value;

use super::object;
use crate::error::ProxyError;
use crate::pipeline::op::Wire;

/// An uploaded file, as the caller loaded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Its id (`file-…`).
    pub id: String,
    /// The name it was uploaded with.
    pub filename: String,
    /// Its media type as uploaded (parameters such as `; charset=utf-8` are ignored).
    pub mime: String,
    /// Its content.
    pub bytes: Bytes,
}

/// What the model the request goes to takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// It reads PDFs itself: a PDF goes as the wire's document part, not extracted text.
    pub native_pdf: bool,
    /// The most bytes the resolved files may add to one request (base64 and text as
    /// inserted, each reference counted).
    pub max_bytes: usize,
}

/// Why a request's file references could not be resolved. Each is the client's error (a
/// 400 naming `messages`, or `input` for Responses requests: see [`FileError::into_proxy`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// No file with this id among the request owner's files.
    #[error("file {id} was not found")]
    NotFound {
        /// The id the request named.
        id: String,
        /// The request field the reference is in.
        param: &'static str,
    },
    /// Neither text, nor a supported image, nor a PDF.
    #[error(
        "{id} ({filename}, {mime}) cannot be given to this model: only text, images (PNG, JPEG, GIF, WebP) and PDFs are"
    )]
    Unsupported {
        /// The file's id.
        id: String,
        /// Its name.
        filename: String,
        /// Its media type.
        mime: String,
        /// The request field the reference is in.
        param: &'static str,
    },
    /// A text file (by type or name) whose content is not UTF-8.
    #[error("{id} ({filename}, {mime}) cannot be given to this model: it is not UTF-8 text")]
    NotUtf8 {
        /// The file's id.
        id: String,
        /// Its name.
        filename: String,
        /// Its media type.
        mime: String,
        /// The request field the reference is in.
        param: &'static str,
    },
    /// A PDF for a model that does not read PDFs, with no text to extract.
    #[error(
        "{id} ({filename}) cannot be given to this model: it does not read PDFs, and no text could be extracted from this one ({reason})"
    )]
    NoPdfText {
        /// The file's id.
        id: String,
        /// Its name.
        filename: String,
        /// Why no text came out.
        reason: String,
        /// The request field the reference is in.
        param: &'static str,
    },
    /// The resolved files would add more than [`Caps::max_bytes`] to the request.
    #[error(
        "the files this request refers to come to more than the {limit}-byte limit per request (reached at {id})"
    )]
    TooLarge {
        /// The cap.
        limit: usize,
        /// The file that went over it.
        id: String,
        /// The request field the reference is in.
        param: &'static str,
    },
    /// The body is not JSON, or a file reference is malformed.
    #[error("{message}")]
    Malformed {
        /// What is wrong.
        message: String,
        /// The request field it is in.
        param: &'static str,
    },
}

impl FileError {
    /// The request field the error is about: `messages`, or `input` for Responses.
    pub fn param(&self) -> &'static str {
        match self {
            FileError::NotFound { param, .. }
            | FileError::Unsupported { param, .. }
            | FileError::NotUtf8 { param, .. }
            | FileError::NoPdfText { param, .. }
            | FileError::TooLarge { param, .. }
            | FileError::Malformed { param, .. } => param,
        }
    }

    /// The 400 the client gets.
    pub fn into_proxy(self) -> ProxyError {
        ProxyError::InvalidField {
            param: self.param(),
            message: self.to_string(),
        }
    }
}

/// The request field that holds a wire's conversation.
fn param_of(wire: Wire) -> &'static str {
    match wire {
        Wire::OpenAiResponses => "input",
        _ => "messages",
    }
}

/// The ids of the uploaded files a request in `wire` refers to, each once, in order of
/// first reference. Wires with no file references (embeddings, …) refer to none.
pub fn file_refs(wire: Wire, body: &[u8]) -> Result<Vec<String>, ProxyError> {
    // Almost no request refers to a file: a body without the key is not parsed (this runs
    // on every chat request).
    if !takes_files(wire) || memchr::memmem::find(body, b"\"file_id\"").is_none() {
        return Ok(Vec::new());
    }
    let mut req: Value =
        serde_json::from_slice(body).map_err(|e| ProxyError::InvalidJson(e.to_string()))?;
    let mut ids: Vec<String> = Vec::new();
    each_part(wire, &mut req, &mut |part| {
        if let Some(id) = reference(wire, part)? {
            if !ids.iter().any(|i| i == id) {
                ids.push(id.to_string());
            }
        }
        Ok(())
    })
    .map_err(|message| ProxyError::InvalidField {
        param: param_of(wire),
        message,
    })?;
    Ok(ids)
}

/// The body with every file reference replaced by the file's content as `wire` takes it
/// (see the module doc). A body without references comes back unchanged.
pub fn resolve(
    wire: Wire,
    body: &[u8],
    files: &[StoredFile],
    caps: Caps,
) -> Result<Bytes, FileError> {
    let param = param_of(wire);
    let malformed = |message: String| FileError::Malformed { message, param };
    if !takes_files(wire) {
        return Ok(Bytes::copy_from_slice(body));
    }
    let mut req: Value = serde_json::from_slice(body)
        .map_err(|e| malformed(format!("request body is not valid JSON: {e}")))?;
    let mut used = 0usize;
    let mut replaced = false;
    each_part(wire, &mut req, &mut |part| {
        let Some(id) = reference(wire, part).map_err(malformed)? else {
            return Ok(());
        };
        let Some(file) = files.iter().find(|f| f.id == id) else {
            return Err(FileError::NotFound {
                id: id.to_string(),
                param,
            });
        };
        *part = replacement(wire, part, file, caps, &mut used, param)?;
        replaced = true;
        Ok(())
    })?;
    if !replaced {
        return Ok(Bytes::copy_from_slice(body));
    }
    serde_json::to_vec(&req)
        .map(Bytes::from)
        .map_err(|e| malformed(e.to_string()))
}

/// Whether requests in `wire` can refer to files.
fn takes_files(wire: Wire) -> bool {
    matches!(
        wire,
        Wire::OpenAiChat
            | Wire::OpenAiResponses
            | Wire::AnthropicMessages
            | Wire::AnthropicCountTokens
    )
}

/// Calls `f` on every content part of the request that may be a file reference: the
/// parts of each message's `content` (and of Anthropic `tool_result` blocks), and of
/// Responses items' `content` and `function_call_output` `output`.
fn each_part<E>(
    wire: Wire,
    req: &mut Value,
    f: &mut dyn FnMut(&mut Value) -> Result<(), E>,
) -> Result<(), E> {
    let (list, keys): (&str, &[&str]) = match wire {
        Wire::OpenAiResponses => ("input", &["content", "output"]),
        _ => ("messages", &["content"]),
    };
    let anthropic = matches!(wire, Wire::AnthropicMessages | Wire::AnthropicCountTokens);
    let Some(items) = req.get_mut(list).and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for item in items {
        for key in keys {
            let Some(parts) = item.get_mut(*key).and_then(Value::as_array_mut) else {
                continue;
            };
            for part in parts {
                f(part)?;
                if anthropic && part["type"] == "tool_result" {
                    let inner = part.get_mut("content").and_then(Value::as_array_mut);
                    for p in inner.into_iter().flatten() {
                        f(p)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The file id `part` refers to, if it is a file reference in `wire`.
fn reference(wire: Wire, part: &Value) -> Result<Option<&str>, String> {
    let (id, field) = match (wire, part["type"].as_str()) {
        (Wire::OpenAiChat, Some("file")) => (&part["file"]["file_id"], "file.file_id"),
        (Wire::OpenAiChat, Some("image_file")) => {
            (&part["image_file"]["file_id"], "image_file.file_id")
        }
        (Wire::AnthropicMessages | Wire::AnthropicCountTokens, Some("document" | "image"))
            if part["source"]["type"] == "file" =>
        {
            (&part["source"]["file_id"], "source.file_id")
        }
        (Wire::OpenAiResponses, Some("input_file" | "input_image")) => {
            (&part["file_id"], "file_id")
        }
        _ => return Ok(None),
    };
    match id {
        Value::Null => Ok(None),
        Value::String(s) if !s.is_empty() => Ok(Some(s)),
        _ => Err(format!(
            "{} part: {field} must be a file id (a non-empty string)",
            part["type"].as_str().unwrap_or_default()
        )),
    }
}

/// What a file is, as far as a model is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    /// An image, with its canonical media type.
    Image(&'static str),
    Pdf,
    Other,
}

/// Media types of text that are not `text/*`.
const TEXT_MIMES: &[&str] = &[
    "application/json",
    "application/jsonl",
    "application/x-ndjson",
    "application/xml",
    "application/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "application/typescript",
    "application/yaml",
    "application/x-yaml",
    "application/toml",
    "application/x-toml",
    "application/sql",
    "application/graphql",
    "application/x-sh",
    "application/x-shellscript",
    "application/x-python",
    "application/x-python-code",
    "application/x-httpd-php",
    "application/x-tex",
    "application/x-latex",
];

/// File name extensions (or whole names) of text files, for uploads whose media type says
/// nothing (`application/octet-stream`, or a browser's guess such as Excel for `.csv`).
#[rustfmt::skip]
const TEXT_EXTENSIONS: &[&str] = &[
    "txt", "text", "md", "markdown", "mdx", "rst", "adoc", "org", "tex", "csv", "tsv", "json",
    "jsonl", "ndjson", "yaml", "yml", "toml", "ini", "cfg", "conf", "properties", "env", "xml",
    "html", "htm", "xhtml", "css", "scss", "sass", "less", "svg", "log", "js", "mjs", "cjs",
    "jsx", "ts", "tsx", "vue", "svelte", "py", "pyi", "ipynb", "rb", "php", "pl", "pm", "lua",
    "r", "jl", "go", "rs", "java", "kt", "kts", "scala", "groovy", "gradle", "swift", "m", "mm",
    "c", "h", "cc", "cpp", "cxx", "hpp", "hh", "cs", "fs", "vb", "dart", "ex", "exs", "erl",
    "hs", "ml", "clj", "sh", "bash", "zsh", "fish", "ps1", "bat", "cmd", "sql", "graphql",
    "gql", "proto", "tf", "hcl", "nix", "cmake", "mk", "diff", "patch", "dockerfile",
    "makefile",
];

fn image_type(mime_or_ext: &str) -> Option<&'static str> {
    match mime_or_ext {
        "image/png" | "png" => Some("image/png"),
        "image/jpeg" | "image/jpg" | "image/pjpeg" | "jpg" | "jpeg" => Some("image/jpeg"),
        "image/gif" | "gif" => Some("image/gif"),
        "image/webp" | "webp" => Some("image/webp"),
        _ => None,
    }
}

/// A file's kind by its media type, else by its name's extension (or its whole name, for
/// `Makefile` and the like).
fn kind(file: &StoredFile) -> Kind {
    let mime = file
        .mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if mime == "application/pdf" {
        return Kind::Pdf;
    }
    if let Some(image) = image_type(&mime) {
        return Kind::Image(image);
    }
    if mime.starts_with("text/")
        || TEXT_MIMES.contains(&mime.as_str())
        || mime.ends_with("+json")
        || mime.ends_with("+xml")
    {
        return Kind::Text;
    }
    let name = file.filename.rsplit(['/', '\\']).next().unwrap_or_default();
    let ext = name
        .rsplit_once('.')
        .map_or(name, |(_, ext)| ext)
        .to_ascii_lowercase();
    if ext == "pdf" {
        Kind::Pdf
    } else if let Some(image) = image_type(&ext) {
        Kind::Image(image)
    } else if TEXT_EXTENSIONS.contains(&ext.as_str()) {
        Kind::Text
    } else {
        Kind::Other
    }
}

/// Counts `n` more bytes against the cap.
fn spend(
    used: &mut usize,
    n: usize,
    caps: Caps,
    file: &StoredFile,
    param: &'static str,
) -> Result<(), FileError> {
    *used = used.saturating_add(n);
    if *used > caps.max_bytes {
        return Err(FileError::TooLarge {
            limit: caps.max_bytes,
            id: file.id.clone(),
            param,
        });
    }
    Ok(())
}

/// The part that replaces the reference `part` to `file`.
fn replacement(
    wire: Wire,
    part: &Value,
    file: &StoredFile,
    caps: Caps,
    used: &mut usize,
    param: &'static str,
) -> Result<Value, FileError> {
    let base64_len = file.bytes.len().div_ceil(3) * 4;
    let named_text = |text: &str, used: &mut usize| {
        let text = format!("{}:\n{text}", file.filename);
        spend(used, text.len(), caps, file, param)?;
        Ok(text_part(wire, part, text))
    };
    match kind(file) {
        Kind::Text => {
            let text = std::str::from_utf8(&file.bytes).map_err(|_| FileError::NotUtf8 {
                id: file.id.clone(),
                filename: file.filename.clone(),
                mime: file.mime.clone(),
                param,
            })?;
            named_text(text.strip_prefix('\u{feff}').unwrap_or(text), used)
        }
        Kind::Image(mime) => {
            spend(used, base64_len, caps, file, param)?;
            Ok(image_part(wire, part, mime, &encode(&file.bytes)))
        }
        Kind::Pdf if caps.native_pdf => {
            spend(used, base64_len, caps, file, param)?;
            Ok(pdf_part(wire, part, &file.filename, &encode(&file.bytes)))
        }
        Kind::Pdf => {
            let text = pdf_text(&file.bytes).map_err(|reason| FileError::NoPdfText {
                id: file.id.clone(),
                filename: file.filename.clone(),
                reason,
                param,
            })?;
            named_text(&text, used)
        }
        Kind::Other => Err(FileError::Unsupported {
            id: file.id.clone(),
            filename: file.filename.clone(),
            mime: file.mime.clone(),
            param,
        }),
    }
}

fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Copies the fields of an Anthropic block that stay valid on its replacement.
fn keep(from: &Value, into: &mut Value, keys: &[&str]) {
    for key in keys {
        if let Some(v) = from.get(*key).filter(|v| !v.is_null()) {
            into[*key] = v.clone();
        }
    }
}

fn text_part(wire: Wire, part: &Value, text: String) -> Value {
    match wire {
        Wire::OpenAiResponses => object([("type", "input_text".into()), ("text", text.into())]),
        Wire::AnthropicMessages | Wire::AnthropicCountTokens => {
            let mut block = object([("type", "text".into()), ("text", text.into())]);
            keep(part, &mut block, &["cache_control"]);
            block
        }
        _ => object([("type", "text".into()), ("text", text.into())]),
    }
}

/// The image detail a reference asked for (OpenAI's `detail`).
fn detail(part: &Value) -> Option<&str> {
    part["detail"]
        .as_str()
        .or_else(|| part["image_file"]["detail"].as_str())
}

fn image_part(wire: Wire, part: &Value, mime: &str, data: &str) -> Value {
    let url = format!("data:{mime};base64,{data}");
    match wire {
        Wire::OpenAiResponses => object([
            ("type", "input_image".into()),
            ("image_url", url.into()),
            ("detail", detail(part).unwrap_or("auto").into()),
        ]),
        Wire::AnthropicMessages | Wire::AnthropicCountTokens => {
            let mut block = object([
                ("type", "image".into()),
                (
                    "source",
                    object([
                        ("type", "base64".into()),
                        ("media_type", mime.into()),
                        ("data", data.into()),
                    ]),
                ),
            ]);
            keep(part, &mut block, &["cache_control"]);
            block
        }
        _ => {
            let mut image_url = object([("url", url.into())]);
            if let Some(d) = detail(part) {
                image_url["detail"] = d.into();
            }
            object([("type", "image_url".into()), ("image_url", image_url)])
        }
    }
}

fn pdf_part(wire: Wire, part: &Value, filename: &str, data: &str) -> Value {
    let data_url = || format!("data:application/pdf;base64,{data}");
    match wire {
        Wire::OpenAiResponses => object([
            ("type", "input_file".into()),
            ("filename", filename.into()),
            ("file_data", data_url().into()),
        ]),
        Wire::AnthropicMessages | Wire::AnthropicCountTokens => {
            let mut block = object([
                ("type", "document".into()),
                (
                    "source",
                    object([
                        ("type", "base64".into()),
                        ("media_type", "application/pdf".into()),
                        ("data", data.into()),
                    ]),
                ),
                ("title", filename.into()),
            ]);
            keep(
                part,
                &mut block,
                &["title", "context", "citations", "cache_control"],
            );
            block
        }
        _ => object([
            ("type", "file".into()),
            (
                "file",
                object([
                    ("filename", filename.into()),
                    ("file_data", data_url().into()),
                ]),
            ),
        ]),
    }
}

/// The text of a PDF, tidied (trailing spaces and runs of blank lines dropped); an error
/// says why there is none. A malformed PDF that makes the extractor panic is an error too.
fn pdf_text(bytes: &[u8]) -> Result<String, String> {
    let text = match std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes)) {
        Ok(Ok(text)) => text,
        Ok(Err(e)) => return Err(format!("it could not be read: {e}")),
        Err(_) => return Err("it could not be read".into()),
    };
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    if out.is_empty() {
        return Err("it has no text layer; it may be scanned".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
