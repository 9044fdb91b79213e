//! Tests of file-reference resolution.
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
        vec![json!({"type": "image_file", "image_file": {"file_id": "file-png", "detail": "low"}})],
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
    // A body naming no file is not parsed at all (routing refuses bad JSON first).
    assert!(file_refs(Wire::OpenAiChat, b"{").unwrap().is_empty());
    assert!(matches!(
        file_refs(Wire::OpenAiChat, br#"{"file_id":"#),
        Err(ProxyError::InvalidJson(_))
    ));
    let bad =
        br#"{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":7}]}]}"#;
    let Err(ProxyError::InvalidField { param, message }) = file_refs(Wire::OpenAiResponses, bad)
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
