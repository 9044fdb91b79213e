//! Images end to end: `POST /v1/images/generations` (JSON) passed through to
//! OpenAI-compatible backends and translated for Gemini image models, `/v1/images/edits` and
//! `/v1/images/variations` (multipart) passed through with their boundary, the `images`
//! scope, backends that serve no images, and `timeouts.request.image_generation`. The test
//! upstream answers with the replies of `tests/fixtures/images/` and records every request
//! byte for byte.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{json, Value};

use crate::common::*;

/// `OTTER` of `tests/fixtures/images/README.md`: a real 1x1 PNG (one brown pixel).
pub const OTTER: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mPojtIGAAKEARGtHjFHAAAAAElFTkSuQmCC";

/// The PNG's bytes (its signature holds a CR LF, as multipart delimiters do).
pub fn otter_png() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(OTTER)
        .unwrap()
}

/// One request an [`ImageUpstream`] received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Path and query.
    pub path: String,
    pub headers: HeaderMap,
    /// The body as sent.
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "upstream body not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

/// How an [`ImageUpstream`] answers its POSTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// As the documented APIs do (see [`ImageUpstream`]).
    Answer,
    /// Never sends response headers.
    Hang,
    /// Sends 200 headers and the start of a body, then nothing more.
    Stall,
}

/// A test upstream speaking OpenAI's image endpoints and Gemini's `generateContent` for
/// image models. Every POST is recorded (bytes and headers); GETs (health probes) are
/// answered 404 unrecorded.
///
/// - `/v1/images/generations`, `/v1/images/edits`, `/v1/images/variations`:
///   `openai_b64_reply.json`;
/// - `/v1beta/models/{m}:generateContent`: `gemini_reply.json`, or for a prompt containing
///   `SAFETY` `gemini_reply_image_safety.json`, `BLOCK` `gemini_reply_prompt_blocked.json`.
pub struct ImageUpstream {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Received>>>,
}

impl ImageUpstream {
    pub async fn start() -> ImageUpstream {
        ImageUpstream::start_as(Behaviour::Answer).await
    }

    pub async fn start_as(behaviour: Behaviour) -> ImageUpstream {
        let log: Arc<Mutex<Vec<Received>>> = Default::default();
        let record = log.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let record = record.clone();
                async move {
                    let path = uri
                        .path_and_query()
                        .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string());
                    if method != Method::POST {
                        return json_reply(404, r#"{"error":"not found"}"#.into());
                    }
                    record.lock().unwrap().push(Received {
                        path: path.clone(),
                        headers,
                        body: body.clone(),
                    });
                    match behaviour {
                        Behaviour::Answer => answer(&path, &body),
                        Behaviour::Hang => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            json_reply(500, "{}".into())
                        }
                        Behaviour::Stall => {
                            let start = futures_util::stream::once(async {
                                Ok::<_, std::io::Error>(Bytes::from_static(b"{\"created\":1,"))
                            });
                            let rest = futures_util::stream::once(async {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                                Ok::<_, std::io::Error>(Bytes::from_static(b"\"data\":[]}"))
                            });
                            axum::response::IntoResponse::into_response((
                                [("content-type", "application/json")],
                                axum::body::Body::from_stream(futures_util::StreamExt::chain(
                                    start, rest,
                                )),
                            ))
                        }
                    }
                }
            },
        );
        ImageUpstream {
            addr: spawn_upstream(app).await,
            log,
        }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// The one request received; panics unless exactly one came.
    pub fn only(&self) -> Received {
        let log = self.log.lock().unwrap();
        assert_eq!(
            log.len(),
            1,
            "expected exactly one request upstream: {log:?}"
        );
        log[0].clone()
    }
}

fn json_reply(status: u16, body: String) -> axum::response::Response {
    axum::response::IntoResponse::into_response((
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    ))
}

fn answer(path: &str, body: &[u8]) -> axum::response::Response {
    match path {
        "/v1/images/generations" | "/v1/images/edits" | "/v1/images/variations" => {
            json_reply(200, fixture("images/openai_b64_reply.json"))
        }
        p if p.starts_with("/v1beta/models/") && p.ends_with(":generateContent") => {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let prompt = v["contents"][0]["parts"][0]["text"]
                .as_str()
                .unwrap_or_default();
            let file = if prompt.contains("SAFETY") {
                "images/gemini_reply_image_safety.json"
            } else if prompt.contains("BLOCK") {
                "images/gemini_reply_prompt_blocked.json"
            } else {
                "images/gemini_reply.json"
            };
            json_reply(200, fixture(file))
        }
        _ => json_reply(
            404,
            json!({"error": format!("not served: {path}")}).to_string(),
        ),
    }
}

/// One part of a multipart/form-data body: `(name, Some((filename, content type)) for a
/// file, value)`.
pub type Part<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a [u8]);

/// A multipart/form-data body of `parts`.
pub fn multipart(boundary: &str, parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, file, value) in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some((filename, ct)) => out.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {ct}\r\n\r\n").as_bytes(),
            ),
            None => out.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// The parts of a multipart/form-data body, as `(name, filename, value)` (a small reader
/// for well-formed bodies, to check what an upstream received).
pub fn form_parts(content_type: &str, body: &[u8]) -> Vec<(String, Option<String>, Vec<u8>)> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .unwrap_or_else(|| panic!("no boundary in {content_type}"))
        .trim_matches('"')
        .to_string();
    let delimiter = format!("\r\n--{boundary}");
    // A leading CR LF makes the first delimiter look like the others.
    let mut text = b"\r\n".to_vec();
    text.extend_from_slice(body);
    let mut pieces = Vec::new();
    let mut rest = &text[..];
    while let Some(i) = find(rest, delimiter.as_bytes()) {
        pieces.push(&rest[..i]);
        rest = &rest[i + delimiter.len()..];
    }
    assert!(
        rest.starts_with(b"--"),
        "multipart body does not end with its close delimiter: {}",
        String::from_utf8_lossy(body)
    );
    pieces
        .into_iter()
        .skip(1)
        .map(|piece| {
            let piece = piece
                .strip_prefix(b"\r\n")
                .expect("CR LF after a delimiter");
            let at = find(piece, b"\r\n\r\n").expect("part headers end");
            let head = String::from_utf8_lossy(&piece[..at]).to_string();
            let attr = |key: &str| {
                head.split(';')
                    .map(str::trim)
                    .find_map(|a| a.strip_prefix(&format!("{key}=\"")))
                    .map(|v| v.split('"').next().unwrap().to_string())
            };
            (
                attr("name").expect("part name"),
                attr("filename"),
                piece[at + 4..].to_vec(),
            )
        })
        .collect()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A temporary `store` and `files` section for a test router.
pub fn storage_yaml(name: &str) -> String {
    let dir = temp_dir(name);
    format!(
        "store: {{path: \"{}\"}}\nfiles: {{storage_path: \"{}\"}}\n",
        dir.join("store.redb").display(),
        dir.join("files").display()
    )
}

async fn post(
    addr: SocketAddr,
    path: &str,
    body: impl Into<Bytes>,
    headers: &[(&str, &str)],
) -> Reply {
    send(Method::POST, format!("http://{addr}{path}"), body, headers).await
}

async fn generate(addr: SocketAddr, body: &Value) -> Reply {
    post(addr, "/v1/images/generations", body.to_string(), &[]).await
}

/// The generations request fixture, for `model`.
fn generate_request(model: &str) -> Value {
    let mut v: Value = serde_json::from_str(&fixture("images/generate_request.json")).unwrap();
    v["model"] = model.into();
    v
}

const BOUNDARY: &str = "----continuum-test-7d1c42e9";

fn form_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// An edit of the otter PNG for `model` (no model field when `None`).
fn edit_form(model: Option<&str>) -> Vec<u8> {
    let png = otter_png();
    let mut parts: Vec<Part<'_>> = vec![
        ("image", Some(("otter.png", "image/png")), &png),
        ("prompt", None, b"A cute baby sea otter wearing a beret"),
    ];
    if let Some(m) = model {
        parts.push(("model", None, m.as_bytes()));
    }
    parts.push(("size", None, b"1024x1024"));
    multipart(BOUNDARY, &parts)
}

/// A variation of the otter PNG for `model` (no model field when `None`).
fn variation_form(model: Option<&str>) -> Vec<u8> {
    let png = otter_png();
    let mut parts: Vec<Part<'_>> = vec![("image", Some(("otter.png", "image/png")), &png)];
    if let Some(m) = model {
        parts.push(("model", None, m.as_bytes()));
    }
    parts.push(("n", None, b"2"));
    multipart(BOUNDARY, &parts)
}

async fn post_form(addr: SocketAddr, path: &str, form: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
    let ct = form_type();
    let mut all = vec![("content-type", ct.as_str())];
    all.extend_from_slice(headers);
    post(addr, path, form, &all).await
}

// ---------------------------------------------------------------------------------------
// Generations

#[tokio::test]
async fn generations_pass_through_a_generic_backend_byte_for_byte() {
    let up = ImageUpstream::start().await;
    let router = start_router(&format!(
        "{}backends:\n  - {{name: gen, type: generic, url: \"{}\", api_key: up-key, models: [gpt-image-1.5]}}\n",
        storage_yaml("img-generic"),
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    // The fixture as written (its spacing and field order), not re-serialised.
    let sent = fixture("images/generate_request.json");
    let r = post(addr, "/v1/images/generations", sent.clone(), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.text(), fixture("images/openai_b64_reply.json"));

    let got = up.only();
    assert_eq!(got.path, "/v1/images/generations");
    assert_eq!(got.body, Bytes::from(sent));
    assert_eq!(got.header("authorization"), "Bearer up-key");
    assert_eq!(got.header("content-type"), "application/json");
}

#[tokio::test]
async fn generations_name_the_backend_model_of_an_alias() {
    let up = ImageUpstream::start().await;
    let router = start_router(&format!(
        "{}backends:\n  - {{name: gen, type: openai, url: \"{}\", api_key: up-key, models: [gpt-image-1.5], model_aliases: {{otter-painter: gpt-image-1.5}}}}\n",
        storage_yaml("img-alias"),
        up.url()
    ))
    .await;
    let r = generate(
        router.tcp_addr().unwrap(),
        &generate_request("otter-painter"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(up.only().json(), generate_request("gpt-image-1.5"));
}

#[tokio::test]
async fn generations_on_a_gemini_backend_are_translated_both_ways() {
    let up = ImageUpstream::start().await;
    let router = start_router(&format!(
        "{}backends:\n  - {{name: gem, type: gemini, url: \"{}\", api_key: gk-img, models: [gemini-2.5-flash-image]}}\n",
        storage_yaml("img-gemini"),
        up.url()
    ))
    .await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let r = generate(
        router.tcp_addr().unwrap(),
        &generate_request("gemini-2.5-flash-image"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let got = up.only();
    assert_eq!(
        got.path,
        "/v1beta/models/gemini-2.5-flash-image:generateContent"
    );
    assert_eq!(got.header("x-goog-api-key"), "gk-img");
    assert_eq!(got.json(), fixture_json("images/gemini_request.json"));

    // The reply: the fixture's, but `created` is when the router made it.
    let mut reply = r.json();
    let created = reply["created"].as_u64().expect("created");
    assert!(
        created >= before && created <= before + 60,
        "{created} vs {before}"
    );
    let mut expected = fixture_json("images/openai_reply.json");
    reply["created"] = Value::Null;
    expected["created"] = Value::Null;
    assert_eq!(reply, expected);
}

#[tokio::test]
async fn gemini_refusals_are_content_policy_violations() {
    let up = ImageUpstream::start().await;
    let router = start_router(&format!(
        "{}backends:\n  - {{name: gem, type: gemini, url: \"{}\", api_key: gk, models: [gemini-2.5-flash-image]}}\n",
        storage_yaml("img-refused"),
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    for (prompt, reason) in [
        ("an otter SAFETY test", "IMAGE_SAFETY"),
        ("an otter BLOCK test", "PROHIBITED_CONTENT"),
    ] {
        let r = generate(
            addr,
            &json!({"model": "gemini-2.5-flash-image", "prompt": prompt}),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{prompt}: {}", r.text());
        let e = &r.json()["error"];
        assert_eq!(e["code"], "content_policy_violation", "{}", r.text());
        assert_eq!(e["type"], "invalid_request_error", "{}", r.text());
        assert_eq!(e["param"], "prompt", "{}", r.text());
        assert!(
            e["message"].as_str().unwrap().contains(reason),
            "{}",
            r.text()
        );
    }
    // Each was asked once: a refusal is not retried.
    assert_eq!(up.received().len(), 2);
}

#[tokio::test]
async fn gemini_makes_several_images_one_request_each_and_hosts_urls() {
    let up = ImageUpstream::start().await;
    let router = start_router(&format!(
        "{}backends:\n  - {{name: gem, type: gemini, url: \"{}\", api_key: gk, models: [gemini-2.5-flash-image]}}\n",
        storage_yaml("img-gemini-params"),
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    // n = 3: Gemini makes one image per request, so it is asked three times.
    let r = generate(
        addr,
        &json!({"model": "gemini-2.5-flash-image", "prompt": "three otters", "n": 3}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let data = r.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 3, "{}", r.text());
    assert!(data.iter().all(|d| d["b64_json"] == OTTER), "{}", r.text());
    let asked = up.received();
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert!(asked.iter().all(|a| a.body == asked[0].body));
    // n out of range is refused before anything is asked.
    let r = generate(
        addr,
        &json!({"model": "gemini-2.5-flash-image", "prompt": "otters", "n": 11}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.json()["error"]["param"], "n", "{}", r.text());
    assert_eq!(up.received().len(), 3);

    // response_format url: the router hosts the image Gemini sent in base64.
    let r = generate(
        addr,
        &json!({"model": "gemini-2.5-flash-image", "prompt": "an otter", "response_format": "url"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert!(v["data"][0].get("b64_json").is_none(), "{v}");
    let url = v["data"][0]["url"].as_str().unwrap().to_string();
    let path = url
        .strip_prefix(&format!("http://{addr}"))
        .unwrap_or_else(|| panic!("not a URL of this router: {url}"));
    assert!(path.starts_with("/v1/images/hosted/file-"), "{url}");
    // No key is needed: the id is the secret.
    let image = get_path(addr, path).await;
    assert_eq!(image.status, StatusCode::OK);
    assert_eq!(image.header("content-type"), "image/png");
    assert_eq!(&image.body[..], &otter_png()[..]);
    // A hosted image is not a user's file.
    assert_eq!(get_path(addr, "/v1/files").await.json()["data"], json!([]));
    assert_eq!(
        get_path(addr, "/v1/images/hosted/file-000000000000000000000000")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // b64_json is fine.
    let r = generate(
        addr,
        &json!({"model": "gemini-2.5-flash-image", "prompt": "an otter", "response_format": "b64_json"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["data"][0]["b64_json"], OTTER);
}

// ---------------------------------------------------------------------------------------
// Edits and variations (multipart)

#[tokio::test]
async fn edits_and_variations_reach_a_localai_backend_byte_for_byte() {
    let up = ImageUpstream::start().await;
    let other = ImageUpstream::start().await;
    let router = start_router(&format!(
        "{}backends:\n  - {{name: local, type: localai, url: \"{}\", models: [stablediffusion, dall-e-2]}}\n  - {{name: other, type: localai, url: \"{}\", models: [flux-dev]}}\n",
        storage_yaml("img-multipart"),
        up.url(),
        other.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();

    // An edit naming its model in the form.
    let form = edit_form(Some("stablediffusion"));
    let r = post_form(addr, "/v1/images/edits", form.clone(), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.text(), fixture("images/openai_b64_reply.json"));
    // A variation without a model field: dall-e-2, as OpenAI's default.
    let form2 = variation_form(None);
    let r = post_form(addr, "/v1/images/variations", form2.clone(), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.text(), fixture("images/openai_b64_reply.json"));

    let got = up.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].path, "/v1/images/edits");
    assert_eq!(got[0].header("content-type"), form_type());
    assert_eq!(got[0].body, Bytes::from(form));
    assert_eq!(got[1].path, "/v1/images/variations");
    assert_eq!(got[1].header("content-type"), form_type());
    assert_eq!(got[1].body, Bytes::from(form2));
    assert!(other.received().is_empty());

    // The model field routes: flux-dev is the other backend's.
    let form3 = variation_form(Some("flux-dev"));
    let r = post_form(addr, "/v1/images/variations", form3.clone(), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let got = other.only();
    assert_eq!(got.body, Bytes::from(form3));
    assert_eq!(up.received().len(), 2);

    // A model no backend serves is a 404 naming it; a body that is not multipart a 400.
    let r = post_form(addr, "/v1/images/edits", edit_form(Some("nope")), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert!(r.text().contains("nope"), "{}", r.text());
    let r = post(
        addr,
        "/v1/images/edits",
        edit_form(Some("stablediffusion")),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.json()["error"]["param"], "image", "{}", r.text());
    assert_eq!(up.received().len() + other.received().len(), 3);
}

/// An alias in the form routes to its backend, and that backend is asked for the model it
/// knows (as every JSON request's model is rewritten): the form's `model` value is its
/// model, every other byte as the client sent it.
#[tokio::test]
async fn an_alias_in_a_multipart_form_routes_and_names_the_backend_model() {
    let up = ImageUpstream::start().await;
    let other = ImageUpstream::start().await;
    let router = start_router(&format!(
        "{}backends:\n  - {{name: other, type: localai, url: \"{}\", models: [flux-dev]}}\n  - {{name: local, type: localai, url: \"{}\", models: [stablediffusion], model_aliases: {{sd: stablediffusion}}}}\n",
        storage_yaml("img-multipart-alias"),
        other.url(),
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    for (path, sent, expected) in [
        (
            "/v1/images/edits",
            edit_form(Some("sd")),
            edit_form(Some("stablediffusion")),
        ),
        (
            "/v1/images/variations",
            variation_form(Some("sd")),
            variation_form(Some("stablediffusion")),
        ),
    ] {
        let r = post_form(addr, path, sent, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
        let got = up.received().pop().expect("the alias's backend was asked");
        assert_eq!(got.path, path);
        assert_eq!(got.header("content-type"), form_type());
        let fields = form_parts(&form_type(), &got.body);
        let model = fields.iter().find(|(n, _, _)| n == "model").unwrap();
        assert_eq!(
            String::from_utf8_lossy(&model.2),
            "stablediffusion",
            "{path}: the backend was asked for a model it does not know"
        );
        assert_eq!(got.body, Bytes::from(expected), "{path}");
    }
    assert!(other.received().is_empty());
}

#[tokio::test]
async fn a_model_only_a_mock_serves_is_refused_for_images() {
    let router = start_router(&format!(
        "{}backends:\n  - {{name: demo, type: mock, models: [mock-model]}}\n",
        storage_yaml("img-mock")
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = generate(addr, &json!({"model": "mock-model", "prompt": "an otter"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.json()["error"]["param"], "model", "{}", r.text());
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("'demo' (type mock) does not serve /v1/images/generations"),
        "{message}"
    );
    for path in ["/v1/images/edits", "/v1/images/variations"] {
        let r = post_form(addr, path, edit_form(Some("mock-model")), &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text());
        assert!(
            r.text().contains(&format!("does not serve {path}")),
            "{path}: {}",
            r.text()
        );
    }
}

#[tokio::test]
async fn gemini_backends_make_images_but_do_not_edit_them() {
    let up = ImageUpstream::start().await;
    let router = start_router(&format!(
        "{}backends:\n  - {{name: gem, type: gemini, url: \"{}\", api_key: gk, models: [gemini-2.5-flash-image]}}\n",
        storage_yaml("img-gemini-edit"),
        up.url()
    ))
    .await;
    let r = post_form(
        router.tcp_addr().unwrap(),
        "/v1/images/edits",
        edit_form(Some("gemini-2.5-flash-image")),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(
        r.text()
            .contains("'gem' (type gemini) does not serve /v1/images/edits"),
        "{}",
        r.text()
    );
    assert!(up.received().is_empty());
}

// ---------------------------------------------------------------------------------------
// Access and deadlines

#[tokio::test]
async fn the_images_scope_is_enforced() {
    let up = ImageUpstream::start().await;
    let router = start_router(&format!(
        "{}api_keys:\n  mode: blocking\n  api_keys:\n    - {{key: sk-chat-only-01, id: chatter, scopes: [chat]}}\n    - {{key: sk-images-0001, id: painter, scopes: [images]}}\n    - {{key: sk-writer-0001, id: writer, scopes: [write]}}\nbackends:\n  - {{name: gen, type: generic, url: \"{}\", models: [gpt-image-1]}}\n",
        storage_yaml("img-scope"),
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let body = json!({"model": "gpt-image-1", "prompt": "an otter"}).to_string();
    let bearer = |k: &str| format!("Bearer {k}");

    let chatter = bearer("sk-chat-only-01");
    let r = post(
        addr,
        "/v1/images/generations",
        body.clone(),
        &[("authorization", &chatter)],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let e = &r.json()["error"];
    assert_eq!(e["code"], "insufficient_scope", "{}", r.text());
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("'chatter' lacks the 'write' or 'images' scope"),
        "{}",
        r.text()
    );
    for path in ["/v1/images/edits", "/v1/images/variations"] {
        let r = post_form(
            addr,
            path,
            edit_form(Some("gpt-image-1")),
            &[("authorization", &chatter)],
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.text());
    }
    assert!(up.received().is_empty());

    for key in ["sk-images-0001", "sk-writer-0001"] {
        let auth = bearer(key);
        let r = post(
            addr,
            "/v1/images/generations",
            body.clone(),
            &[("authorization", &auth)],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{key}: {}", r.text());
        let r = post_form(
            addr,
            "/v1/images/edits",
            edit_form(Some("gpt-image-1")),
            &[("authorization", &auth)],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{key}: {}", r.text());
    }
    assert_eq!(up.received().len(), 4);

    // The images scope does not open chat.
    let r = post(
        addr,
        "/v1/chat/completions",
        json!({"model": "gpt-image-1", "messages": [{"role": "user", "content": "hi"}]})
            .to_string(),
        &[("authorization", &bearer("sk-images-0001"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(up.received().len(), 4);
}

/// `timeouts.request.image_generation.first_byte` (not the standard one) holds all three
/// image endpoints: a backend that sends nothing is a 504 soon after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_image_backend_times_out_after_the_image_first_byte_deadline() {
    let up = ImageUpstream::start_as(Behaviour::Hang).await;
    let router = start_router(&format!(
        "{}timeouts:\n  request:\n    standard: {{first_byte: 20s, total: 60s}}\n    image_generation: {{first_byte: 300ms, total: 60s}}\nretry: {{max_attempts: 1}}\nbackends:\n  - {{name: slow, type: localai, url: \"{}\", models: [stablediffusion]}}\n",
        storage_yaml("img-timeout"),
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let generation = json!({"model": "stablediffusion", "prompt": "an otter"}).to_string();
    for path in [
        "/v1/images/generations",
        "/v1/images/edits",
        "/v1/images/variations",
    ] {
        let started = Instant::now();
        let r = if path == "/v1/images/generations" {
            post(addr, path, generation.clone(), &[]).await
        } else {
            post_form(addr, path, edit_form(Some("stablediffusion")), &[]).await
        };
        let took = started.elapsed();
        assert_eq!(
            r.status,
            StatusCode::GATEWAY_TIMEOUT,
            "{path}: {}",
            r.text()
        );
        assert_eq!(r.json()["error"]["code"], "backend_timeout", "{}", r.text());
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "{path}: answered after {took:?}"
        );
    }
    assert_eq!(up.received().len(), 3);
}

/// `timeouts.request.image_generation.total`: a backend that starts its reply and never
/// finishes it is a 504 once the total has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_image_reply_times_out_after_the_image_total_deadline() {
    let up = ImageUpstream::start_as(Behaviour::Stall).await;
    let router = start_router(&format!(
        "{}timeouts:\n  request:\n    standard: {{first_byte: 20s, total: 60s}}\n    image_generation: {{first_byte: 5s, total: 500ms}}\nretry: {{max_attempts: 1}}\nbackends:\n  - {{name: slow, type: openai, url: \"{}\", api_key: k, models: [gpt-image-1]}}\n",
        storage_yaml("img-total"),
        up.url()
    ))
    .await;
    let started = Instant::now();
    let r = generate(
        router.tcp_addr().unwrap(),
        &json!({"model": "gpt-image-1", "prompt": "an otter"}),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.text());
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(4),
        "answered after {took:?}"
    );
}

fn fixture_json(path: &str) -> Value {
    serde_json::from_str(&fixture(path)).unwrap()
}

/// What each attempt at a backend received: (attempt number, body).
type Attempts = Arc<Mutex<Vec<(usize, Vec<u8>)>>>;

/// An image edit far larger than `server.max_body_size` is streamed through from disk (not
/// read into memory), replayed whole on a retry, and its spool file is gone afterwards.
#[tokio::test]
async fn a_large_edit_is_streamed_from_disk_and_replayed_on_retry() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let seen: Attempts = Default::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let (log, count) = (seen.clone(), calls.clone());
    let app = axum::Router::new().route(
        "/v1/images/edits",
        axum::routing::post(move |req: axum::extract::Request| {
            let (log, count) = (log.clone(), count.clone());
            async move {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let bytes = http_body_util::BodyExt::collect(req.into_body())
                    .await
                    .unwrap()
                    .to_bytes();
                log.lock().unwrap().push((n, bytes.to_vec()));
                if n == 0 {
                    return json_reply(503, r#"{"error":{"message":"busy"}}"#.into());
                }
                json_reply(200, fixture("images/openai_b64_reply.json"))
            }
        }),
    );
    let up = spawn_upstream(app).await;
    let dir = temp_dir("img-large-edit");
    let storage = dir.join("files");
    let router = start_router(&format!(
        "server: {{max_body_size: 1MB}}\nstore: {{path: \"{}\"}}\nfiles: {{storage_path: \"{}\"}}\nretry: {{max_attempts: 2, initial_delay: 1ms}}\nbackends:\n  - {{name: a, type: localai, url: \"http://{up}\", models: [sd]}}\n  - {{name: b, type: localai, url: \"http://{up}\", models: [sd]}}\n",
        dir.join("store.redb").display(),
        storage.display()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let boundary = "continuumtestboundary7";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nsd\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na beret\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend((0..5 << 20).map(|i: u32| (i % 251) as u8));
    body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/images/edits"),
        body.clone(),
        &[("content-type", ct.as_str())],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "a 503, then the retry");
    for (n, bytes) in &got {
        assert!(
            bytes == &body,
            "attempt {n} received {} of {} bytes, or others",
            bytes.len(),
            body.len()
        );
    }
    let left: Vec<String> = std::fs::read_dir(&storage)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "spool files left behind: {left:?}");
}
