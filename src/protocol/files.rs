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
    if !takes_files(wire) {
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
mod tests {
    use serde_json::json;

    use super::*;

    const WIRES: [Wire; 3] = [
        Wire::OpenAiChat,
        Wire::AnthropicMessages,
        Wire::OpenAiResponses,
    ];

    fn fixture(name: &str) -> Bytes {
        let path = format!("{}/tests/fixtures/files/{name}", env!("CARGO_MANIFEST_DIR"));
        Bytes::from(std::fs::read(path).unwrap())
    }

    fn file(id: &str, filename: &str, mime: &str, bytes: impl Into<Bytes>) -> StoredFile {
        StoredFile {
            id: id.into(),
            filename: filename.into(),
            mime: mime.into(),
            bytes: bytes.into(),
        }
    }

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";

    fn files() -> Vec<StoredFile> {
        vec![
            file("file-md", "notes.md", "text/markdown", "# Notes\nhello"),
            file("file-png", "pic.png", "image/png", PNG),
            file(
                "file-pdf",
                "hello.pdf",
                "application/pdf",
                fixture("hello.pdf"),
            ),
            file(
                "file-docx",
                "report.docx",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                &b"PK\x03\x04"[..],
            ),
            file("file-latin1", "old.csv", "text/csv", &b"caf\xe9"[..]),
            file(
                "file-scan",
                "scan.pdf",
                "application/pdf",
                fixture("no_text.pdf"),
            ),
            file(
                "file-junk",
                "junk.pdf",
                "application/pdf",
                &b"%PDF-1.4\nnot a pdf"[..],
            ),
        ]
    }

    const ROOMY: Caps = Caps {
        native_pdf: true,
        max_bytes: 1 << 20,
    };
    const TEXT_ONLY: Caps = Caps {
        native_pdf: false,
        max_bytes: 1 << 20,
    };

    /// A reference to `id` as `wire` writes it (a document reference for Anthropic).
    fn reference_part(wire: Wire, id: &str) -> Value {
        match wire {
            Wire::OpenAiChat => json!({"type": "file", "file": {"file_id": id}}),
            Wire::AnthropicMessages => {
                json!({"type": "document", "source": {"type": "file", "file_id": id}})
            }
            _ => json!({"type": "input_file", "file_id": id}),
        }
    }

    /// A one-message request in `wire` whose content is `parts`.
    fn request(wire: Wire, parts: Vec<Value>) -> Vec<u8> {
        let v = match wire {
            Wire::OpenAiResponses => {
                json!({"model": "m", "input": [{"role": "user", "content": parts}]})
            }
            _ => {
                json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": parts}]})
            }
        };
        serde_json::to_vec(&v).unwrap()
    }

    fn content(wire: Wire, body: &[u8]) -> Value {
        let v: Value = serde_json::from_slice(body).unwrap();
        let list = if wire == Wire::OpenAiResponses {
            "input"
        } else {
            "messages"
        };
        v[list][0]["content"].clone()
    }

    /// The single part a one-reference request resolves to.
    fn resolved(wire: Wire, id: &str, caps: Caps) -> Result<Value, FileError> {
        let body = request(wire, vec![reference_part(wire, id)]);
        resolve(wire, &body, &files(), caps).map(|out| content(wire, &out)[0].clone())
    }

    fn text_of_part(wire: Wire, part: &Value) -> String {
        let kind = if wire == Wire::OpenAiResponses {
            "input_text"
        } else {
            "text"
        };
        assert_eq!(part["type"], kind, "{part}");
        part["text"].as_str().unwrap().to_string()
    }

    #[test]
    fn text_files_become_text_parts() {
        for wire in WIRES {
            let part = resolved(wire, "file-md", ROOMY).unwrap();
            assert_eq!(text_of_part(wire, &part), "notes.md:\n# Notes\nhello");
        }
    }

    #[test]
    fn images_become_base64_image_parts() {
        let data = encode(PNG);
        let url = format!("data:image/png;base64,{data}");
        assert_eq!(
            resolved(Wire::OpenAiChat, "file-png", ROOMY).unwrap(),
            json!({"type": "image_url", "image_url": {"url": url}})
        );
        assert_eq!(
            resolved(Wire::AnthropicMessages, "file-png", ROOMY).unwrap(),
            json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}})
        );
        assert_eq!(
            resolved(Wire::OpenAiResponses, "file-png", ROOMY).unwrap(),
            json!({"type": "input_image", "image_url": url, "detail": "auto"})
        );
    }

    #[test]
    fn image_references_keep_their_detail_and_cache_control() {
        let body = request(
            Wire::OpenAiChat,
            vec![
                json!({"type": "image_file", "image_file": {"file_id": "file-png", "detail": "low"}}),
            ],
        );
        let out = resolve(Wire::OpenAiChat, &body, &files(), ROOMY).unwrap();
        assert_eq!(
            content(Wire::OpenAiChat, &out)[0]["image_url"]["detail"],
            "low"
        );
        let body = request(
            Wire::OpenAiResponses,
            vec![json!({"type": "input_image", "file_id": "file-png", "detail": "high"})],
        );
        let out = resolve(Wire::OpenAiResponses, &body, &files(), ROOMY).unwrap();
        assert_eq!(content(Wire::OpenAiResponses, &out)[0]["detail"], "high");
        let body = request(
            Wire::AnthropicMessages,
            vec![
                json!({"type": "image", "source": {"type": "file", "file_id": "file-png"}, "cache_control": {"type": "ephemeral"}}),
            ],
        );
        let out = resolve(Wire::AnthropicMessages, &body, &files(), ROOMY).unwrap();
        assert_eq!(
            content(Wire::AnthropicMessages, &out)[0]["cache_control"],
            json!({"type": "ephemeral"})
        );
    }

    #[test]
    fn pdfs_become_native_document_parts() {
        let data = encode(&fixture("hello.pdf"));
        let url = format!("data:application/pdf;base64,{data}");
        assert_eq!(
            resolved(Wire::OpenAiChat, "file-pdf", ROOMY).unwrap(),
            json!({"type": "file", "file": {"filename": "hello.pdf", "file_data": url}})
        );
        assert_eq!(
            resolved(Wire::AnthropicMessages, "file-pdf", ROOMY).unwrap(),
            json!({"type": "document", "title": "hello.pdf",
                   "source": {"type": "base64", "media_type": "application/pdf", "data": data}})
        );
        assert_eq!(
            resolved(Wire::OpenAiResponses, "file-pdf", ROOMY).unwrap(),
            json!({"type": "input_file", "filename": "hello.pdf", "file_data": url})
        );
    }

    #[test]
    fn anthropic_document_fields_stay_on_the_native_pdf() {
        let body = request(
            Wire::AnthropicMessages,
            vec![
                json!({"type": "document", "source": {"type": "file", "file_id": "file-pdf"},
                        "title": "Q4 Report", "citations": {"enabled": true}}),
            ],
        );
        let out = resolve(Wire::AnthropicMessages, &body, &files(), ROOMY).unwrap();
        let block = &content(Wire::AnthropicMessages, &out)[0];
        assert_eq!(block["title"], "Q4 Report");
        assert_eq!(block["citations"], json!({"enabled": true}));
    }

    #[test]
    fn pdfs_become_extracted_text_for_models_that_do_not_read_them() {
        for wire in WIRES {
            let part = resolved(wire, "file-pdf", TEXT_ONLY).unwrap();
            assert_eq!(text_of_part(wire, &part), "hello.pdf:\nHello PDF");
        }
    }

    #[test]
    fn pdfs_without_text_are_refused_when_text_is_needed() {
        for wire in WIRES {
            let e = resolved(wire, "file-scan", TEXT_ONLY).unwrap_err();
            assert!(matches!(e, FileError::NoPdfText { .. }), "{e:?}");
            assert!(
                e.to_string().starts_with(
                    "file-scan (scan.pdf) cannot be given to this model: it does not read PDFs"
                ),
                "{e}"
            );
            assert!(e.to_string().contains("no text layer"), "{e}");
            let e = resolved(wire, "file-junk", TEXT_ONLY).unwrap_err();
            assert!(matches!(e, FileError::NoPdfText { .. }), "{e:?}");
            assert!(e.to_string().contains("(it could not be read"), "{e}");
            // A model that reads PDFs gets the file as it is.
            assert!(resolved(wire, "file-scan", ROOMY).is_ok());
        }
    }

    #[test]
    fn other_files_are_refused_naming_the_file() {
        for wire in WIRES {
            let e = resolved(wire, "file-docx", ROOMY).unwrap_err();
            assert_eq!(
                e.to_string(),
                "file-docx (report.docx, application/vnd.openxmlformats-officedocument.wordprocessingml.document) \
                 cannot be given to this model: only text, images (PNG, JPEG, GIF, WebP) and PDFs are"
            );
            let e = resolved(wire, "file-latin1", ROOMY).unwrap_err();
            assert_eq!(
                e.to_string(),
                "file-latin1 (old.csv, text/csv) cannot be given to this model: it is not UTF-8 text"
            );
        }
    }

    #[test]
    fn unknown_ids_are_not_found() {
        for wire in WIRES {
            let e = resolved(wire, "file-other-owner", ROOMY).unwrap_err();
            assert_eq!(
                e,
                FileError::NotFound {
                    id: "file-other-owner".into(),
                    param: param_of(wire)
                }
            );
            let ProxyError::InvalidField { param, message } = e.into_proxy() else {
                panic!("not an invalid field");
            };
            let expected = if wire == Wire::OpenAiResponses {
                "input"
            } else {
                "messages"
            };
            assert_eq!(
                (param, message.as_str()),
                (expected, "file file-other-owner was not found")
            );
        }
    }

    #[test]
    fn the_cap_counts_what_resolution_adds() {
        let png_len = encode(PNG).len();
        for wire in WIRES {
            let caps = |max_bytes| Caps {
                native_pdf: true,
                max_bytes,
            };
            // Exactly at the cap is fine; one byte under it is not.
            assert!(resolved(wire, "file-png", caps(png_len)).is_ok());
            let e = resolved(wire, "file-png", caps(png_len - 1)).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "the files this request refers to come to more than the {}-byte limit per request (reached at file-png)",
                    png_len - 1
                )
            );
            assert_eq!(e.into_proxy().status(), http::StatusCode::BAD_REQUEST);
            // Every reference counts, the same file twice too.
            let body = request(
                wire,
                vec![
                    reference_part(wire, "file-png"),
                    reference_part(wire, "file-png"),
                ],
            );
            assert!(matches!(
                resolve(wire, &body, &files(), caps(png_len * 2 - 1)),
                Err(FileError::TooLarge { .. })
            ));
            assert!(resolve(wire, &body, &files(), caps(png_len * 2)).is_ok());
            // Text counts as inserted: "notes.md:\n" and the contents.
            let text_len = "notes.md:\n# Notes\nhello".len();
            assert!(resolved(wire, "file-md", caps(text_len)).is_ok());
            assert!(resolved(wire, "file-md", caps(text_len - 1)).is_err());
        }
    }

    #[test]
    fn file_refs_lists_each_id_once_in_every_wire_shape() {
        let chat = json!({"model": "m", "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "file", "file": {"file_id": "file-a"}},
                {"type": "image_file", "image_file": {"file_id": "file-b"}},
                {"type": "file", "file": {"filename": "x.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
                {"type": "file", "file": {"file_id": "file-a"}}]}]});
        assert_eq!(
            file_refs(Wire::OpenAiChat, chat.to_string().as_bytes()).unwrap(),
            ["file-a", "file-b"]
        );
        let anthropic = json!({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": [
                {"type": "document", "source": {"type": "file", "file_id": "file_011"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "x"}},
                {"type": "tool_result", "tool_use_id": "t", "content": [
                    {"type": "image", "source": {"type": "file", "file_id": "file_012"}}]}]}]});
        for wire in [Wire::AnthropicMessages, Wire::AnthropicCountTokens] {
            assert_eq!(
                file_refs(wire, anthropic.to_string().as_bytes()).unwrap(),
                ["file_011", "file_012"]
            );
        }
        let responses = json!({"model": "m", "input": [
            {"role": "user", "content": [
                {"type": "input_file", "file_id": "file-c"},
                {"type": "input_image", "file_id": "file-d", "detail": "auto"},
                {"type": "input_image", "image_url": "https://x/y.png"}]},
            {"type": "function_call_output", "call_id": "c", "output": [
                {"type": "input_file", "file_id": "file-e"}]}]});
        assert_eq!(
            file_refs(Wire::OpenAiResponses, responses.to_string().as_bytes()).unwrap(),
            ["file-c", "file-d", "file-e"]
        );
        // A string input, other wires, and shapes of another wire refer to nothing.
        assert!(
            file_refs(Wire::OpenAiResponses, br#"{"model":"m","input":"hi"}"#)
                .unwrap()
                .is_empty()
        );
        assert!(file_refs(Wire::OpenAiEmbeddings, br#"{"input":"x"}"#)
            .unwrap()
            .is_empty());
        assert!(
            file_refs(Wire::OpenAiChat, anthropic.to_string().as_bytes())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn file_refs_refuses_malformed_references() {
        assert!(matches!(
            file_refs(Wire::OpenAiChat, b"{"),
            Err(ProxyError::InvalidJson(_))
        ));
        let bad = br#"{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":7}]}]}"#;
        let Err(ProxyError::InvalidField { param, message }) =
            file_refs(Wire::OpenAiResponses, bad)
        else {
            panic!("a numeric file id is refused");
        };
        assert_eq!(param, "input");
        assert_eq!(
            message,
            "input_file part: file_id must be a file id (a non-empty string)"
        );
        assert!(matches!(
            resolve(Wire::OpenAiResponses, bad, &files(), ROOMY),
            Err(FileError::Malformed { param: "input", .. })
        ));
    }

    #[test]
    fn resolution_keeps_everything_else() {
        let body = json!({"model": "m", "temperature": 0.5, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "Summarise:"},
                {"type": "file", "file": {"file_id": "file-md"}},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]});
        let out = resolve(
            Wire::OpenAiChat,
            body.to_string().as_bytes(),
            &files(),
            ROOMY,
        )
        .unwrap();
        let mut expected = body.clone();
        expected["messages"][1]["content"][1] =
            json!({"type": "text", "text": "notes.md:\n# Notes\nhello"});
        assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), expected);
        // No references: the very same bytes.
        let plain = br#"{"model":"m",  "messages":[{"role":"user","content":"hi"}]}"#;
        assert_eq!(
            &resolve(Wire::OpenAiChat, plain, &[], ROOMY).unwrap()[..],
            &plain[..]
        );
    }

    #[test]
    fn kinds_come_from_the_media_type_then_the_name() {
        let k = |name: &str, mime: &str| kind(&file("f", name, mime, ""));
        assert_eq!(k("a.bin", "text/plain; charset=utf-8"), Kind::Text);
        assert_eq!(k("a", "application/json"), Kind::Text);
        assert_eq!(k("a", "application/vnd.api+json"), Kind::Text);
        assert_eq!(k("main.rs", "application/octet-stream"), Kind::Text);
        assert_eq!(k("data.csv", "application/vnd.ms-excel"), Kind::Text);
        assert_eq!(k("src/Makefile", ""), Kind::Text);
        assert_eq!(
            k("photo.JPG", "application/octet-stream"),
            Kind::Image("image/jpeg")
        );
        assert_eq!(k("x", "image/jpg"), Kind::Image("image/jpeg"));
        assert_eq!(k("x", "image/webp"), Kind::Image("image/webp"));
        assert_eq!(k("x", "image/tiff"), Kind::Other);
        assert_eq!(k("paper.PDF", ""), Kind::Pdf);
        assert_eq!(k("x", "application/pdf"), Kind::Pdf);
        assert_eq!(k("archive.zip", "application/zip"), Kind::Other);
        // A BOM is not part of the text.
        let body = request(
            Wire::OpenAiChat,
            vec![reference_part(Wire::OpenAiChat, "f")],
        );
        let out = resolve(
            Wire::OpenAiChat,
            &body,
            &[file("f", "a.txt", "text/plain", "\u{feff}hi")],
            ROOMY,
        )
        .unwrap();
        assert_eq!(content(Wire::OpenAiChat, &out)[0]["text"], "a.txt:\nhi");
    }
}
