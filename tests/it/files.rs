//! The Files API: uploads (raw multipart, as curl sends it), listing with its filter,
//! pagination and order, metadata, content and deletion; ownership under `files.auth`;
//! hostile input (file names, framing, part headers, sizes, truncated uploads, ids that are
//! not ours, a delete during a download, storage that cannot be written), each checked for
//! its status, OpenAI's error shape, nothing written outside `files.storage_path`, no
//! temporary file left behind and a server still serving; `kill -9` and restart with the
//! binary (reconciliation at start); and metadata kept in memory.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use continuum::RunningRouter;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

const MOCK: &str = "backends:\n  - {name: m, type: mock, models: [mock-a]}\n";

/// The boundary of the bodies built here.
const B: &str = "------------------------ContinuumTest7d1f";

/// Where blobs go under each test's root: deep enough that `../../../..` from it still
/// lands inside the root, where the tree check sees it.
const STORAGE: &str = "a/b/c/files";

/// A blob's name: `file-` and 24 lowercase hex digits.
fn is_id(name: &str) -> bool {
    name.len() == 29
        && name.starts_with("file-")
        && name[5..]
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// `n` pseudo-random bytes from `seed`.
fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut v = vec![0u8; n];
    rng.fill(&mut v);
    v
}

// ---------------------------------------------------------------------------------------
// Multipart bodies, built byte by byte.

/// A multipart body with `boundary`: each part's header lines (each ending in CRLF), then
/// its content; the closing delimiter last.
fn multipart(boundary: &str, parts: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (headers, content) in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        out.extend_from_slice(headers);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

const PURPOSE: &[u8] = b"Content-Disposition: form-data; name=\"purpose\"\r\n";

/// A `file` part's header lines with this `filename` attribute (as given, bytes).
fn file_headers(filename_attr: &[u8], content_type: Option<&str>) -> Vec<u8> {
    let mut h = b"Content-Disposition: form-data; name=\"file\"; ".to_vec();
    h.extend_from_slice(filename_attr);
    h.extend_from_slice(b"\r\n");
    if let Some(ct) = content_type {
        h.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
    }
    h
}

fn quoted(name: &str) -> Vec<u8> {
    let mut v = b"filename=\"".to_vec();
    v.extend_from_slice(name.as_bytes());
    v.push(b'"');
    v
}

/// The body curl sends for `-F purpose=P -F file=@NAME;type=CT`.
fn upload_body(
    filename: &str,
    content_type: Option<&str>,
    content: &[u8],
    purpose: &str,
) -> Vec<u8> {
    let fh = file_headers(&quoted(filename), content_type);
    multipart(B, &[(PURPOSE, purpose.as_bytes()), (&fh, content)])
}

fn multipart_type() -> String {
    format!("multipart/form-data; boundary={B}")
}

// ---------------------------------------------------------------------------------------
// Requests.

async fn post_files(
    addr: SocketAddr,
    body: Vec<u8>,
    content_type: &str,
    auth: &[(&str, &str)],
) -> Reply {
    let mut headers = vec![("content-type", content_type)];
    headers.extend_from_slice(auth);
    send(
        Method::POST,
        format!("http://{addr}/v1/files"),
        body,
        &headers,
    )
    .await
}

async fn upload_as(
    addr: SocketAddr,
    filename: &str,
    content_type: Option<&str>,
    content: &[u8],
    purpose: &str,
    auth: &[(&str, &str)],
) -> Reply {
    let body = upload_body(filename, content_type, content, purpose);
    post_files(addr, body, &multipart_type(), auth).await
}

/// Uploads and expects 200; the file object.
async fn upload_ok(
    addr: SocketAddr,
    filename: &str,
    content: &[u8],
    purpose: &str,
    auth: &[(&str, &str)],
) -> Value {
    let r = upload_as(addr, filename, Some("text/plain"), content, purpose, auth).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "upload of {filename}: {}",
        r.text()
    );
    r.json()
}

async fn get_as(addr: SocketAddr, path: &str, auth: &[(&str, &str)]) -> Reply {
    send(
        Method::GET,
        format!("http://{addr}{path}"),
        Bytes::new(),
        auth,
    )
    .await
}

async fn delete_as(addr: SocketAddr, path: &str, auth: &[(&str, &str)]) -> Reply {
    send(
        Method::DELETE,
        format!("http://{addr}{path}"),
        Bytes::new(),
        auth,
    )
    .await
}

/// `GET /v1/files{query}`, expecting 200; the list's ids in order.
async fn list_ids(addr: SocketAddr, query: &str, auth: &[(&str, &str)]) -> Vec<String> {
    let r = get_as(addr, &format!("/v1/files{query}"), auth).await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text());
    ids_of(&r.json())
}

fn ids_of(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {list}"))
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

fn id_of(file: &Value) -> String {
    file["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {file}"))
        .to_string()
}

/// Checks OpenAI's error shape exactly (`{"error": {message, type, param, code}}`, JSON,
/// with a request id) and the status; returns the message.
fn openai_error(
    r: &Reply,
    status: StatusCode,
    kind: &str,
    code: Option<&str>,
    param: Option<&str>,
) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/json", "{}", r.text());
    let v = r.json();
    let top: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(top, ["error"], "{v}");
    let e = v["error"].as_object().unwrap();
    let keys: BTreeSet<&str> = e.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["code", "message", "param", "type"]),
        "{v}"
    );
    assert_eq!(e["type"], kind, "{v}");
    assert_eq!(e["code"], json!(code), "{v}");
    assert_eq!(e["param"], json!(param), "{v}");
    assert!(!r.header("x-request-id").is_empty(), "no x-request-id");
    e["message"].as_str().unwrap().to_string()
}

/// A raw HTTP/1.1 exchange over TCP: `head` and `body` are written (in the background,
/// write errors ignored, the write half held open) while the response is read; the
/// response whole (up to its Content-Length or the connection's end).
async fn raw(addr: SocketAddr, head: String, body: Vec<u8>) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.write_all(&body).await;
        wr
    });
    let reply = tokio::time::timeout(Duration::from_secs(30), read_response(&mut rd))
        .await
        .expect("no response within 30 s");
    writer.abort();
    reply.expect("the connection closed before a response")
}

/// Reads one HTTP/1.1 response (Content-Length framed, or to EOF).
async fn read_response(rd: &mut (impl AsyncReadExt + Unpin)) -> Option<Reply> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = HeaderMap::new();
    for line in lines {
        let (k, v) = line.split_once(':').unwrap();
        headers.append(
            HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(v.trim()).unwrap(),
        );
    }
    let mut body = buf[head_end + 4..].to_vec();
    let length: Option<usize> = headers
        .get("content-length")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    loop {
        if length.is_some_and(|n| body.len() >= n) {
            break;
        }
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    Some(Reply {
        status: StatusCode::from_u16(status).unwrap(),
        headers,
        body: Bytes::from(body),
    })
}

fn post_head(content_type: Option<&str>, length: usize) -> String {
    let ct = content_type.map_or(String::new(), |c| format!("content-type: {c}\r\n"));
    format!("POST /v1/files HTTP/1.1\r\nhost: localhost\r\n{ct}content-length: {length}\r\n\r\n")
}

// ---------------------------------------------------------------------------------------
// A router with its own store and storage, and the checks on its directory tree.

struct Env {
    root: PathBuf,
    storage: PathBuf,
    addr: SocketAddr,
    _router: RunningRouter,
}

/// A router whose store is `<root>/store.redb` and storage `<root>/a/b/c/files`; `files`
/// adds to the `files:` flow mapping (", max_file_size: 1000"), `top` adds sections.
async fn env(name: &str, files: &str, top: &str) -> Env {
    let root = temp_dir(name);
    let storage = root.join(STORAGE);
    let router = start_router(&format!(
        "store: {{path: \"{}\"}}\nfiles: {{storage_path: \"{}\"{files}}}\n{top}{MOCK}",
        root.join("store.redb").display(),
        storage.display()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    Env {
        root,
        storage,
        addr,
        _router: router,
    }
}

/// Every path under `root`, relative, directories ending in `/`.
fn tree(root: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                out.insert(format!("{rel}/"));
                walk(&p, root, out);
            } else {
                out.insert(rel);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

/// Since `before`: nothing removed; nothing new but the store's database, the storage
/// directory (and its parents) and blobs named by id in it; no `.tmp` anywhere.
fn assert_contained(root: &Path, before: &BTreeSet<String>) {
    let after = tree(root);
    let removed: Vec<&String> = before.difference(&after).collect();
    assert!(removed.is_empty(), "removed: {removed:?}");
    let storage = format!("{STORAGE}/");
    for p in after.difference(before) {
        let ok = p == "store.redb"
            || ["a/", "a/b/", "a/b/c/", storage.as_str()].contains(&p.as_str())
            || p.strip_prefix(&storage).is_some_and(is_id);
        assert!(ok, "{p} was written; tree now: {after:?}");
    }
    let temps: Vec<&String> = after.iter().filter(|p| p.ends_with(".tmp")).collect();
    assert!(temps.is_empty(), "left behind: {temps:?}");
}

/// Blob names in a storage directory (everything in it, in fact).
fn stored(storage: &Path) -> BTreeSet<String> {
    match std::fs::read_dir(storage) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// The router still answers, and still stores and serves a file.
async fn assert_serving(addr: SocketAddr, auth: &[(&str, &str)]) {
    assert_eq!(get_path(addr, "/health").await.status, StatusCode::OK);
    let r = get_as(addr, "/v1/files", auth).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["object"], "list");
    let f = upload_ok(addr, "still.txt", b"still serving", "user_data", auth).await;
    let c = get_as(addr, &format!("/v1/files/{}/content", id_of(&f)), auth).await;
    assert_eq!(c.body, Bytes::from_static(b"still serving"));
    let d = delete_as(addr, &format!("/v1/files/{}", id_of(&f)), auth).await;
    assert_eq!(d.status, StatusCode::OK);
}

/// Polls until `check` holds (at most `wait`).
async fn eventually(wait: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + wait;
    while !check() {
        assert!(Instant::now() < deadline, "not within {wait:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------
// The API.

#[tokio::test]
async fn upload_get_content_and_delete() {
    let env = env("files-crud", "", "").await;
    let addr = env.addr;
    // Bytes that look like multipart framing inside the content (all but the delimiter
    // itself, CRLF "--" boundary, which no content may hold) come back as sent.
    let almost = &B[..B.len() - 1];
    let mut content =
        format!("hello --{B}-- \r\n--{almost}\r\n\r\n--\r\nnot the end\r\n").into_bytes();
    content.extend(random_bytes(1, 70_000));
    content.extend_from_slice(b"\r\n--");
    let before = now();
    let r = upload_as(
        addr,
        "notes.txt",
        Some("text/plain"),
        &content,
        "assistants",
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/json");
    let f = r.json();
    let id = id_of(&f);
    assert!(is_id(&id), "{id}");
    let created = f["created_at"].as_u64().unwrap();
    assert!((before..=now()).contains(&created), "{f}");
    assert_eq!(
        f,
        json!({
            "id": id, "object": "file", "bytes": content.len(), "created_at": created,
            "expires_at": null, "filename": "notes.txt", "purpose": "assistants",
            "status": "processed", "status_details": null,
        })
    );
    // The blob is named by id, nothing else is in the storage directory.
    assert_eq!(stored(&env.storage), BTreeSet::from([id.clone()]));
    assert_eq!(std::fs::read(env.storage.join(&id)).unwrap(), content);

    let g = get_as(addr, &format!("/v1/files/{id}"), &[]).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.json(), f);

    let c = get_as(addr, &format!("/v1/files/{id}/content"), &[]).await;
    assert_eq!(c.status, StatusCode::OK);
    assert_eq!(c.header("content-type"), "text/plain");
    assert_eq!(c.header("content-length"), content.len().to_string());
    assert_eq!(
        c.header("content-disposition"),
        "attachment; filename=\"notes.txt\""
    );
    assert_eq!(c.body.len(), content.len());
    assert!(c.body == content, "content differs");

    let d = delete_as(addr, &format!("/v1/files/{id}"), &[]).await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(
        d.json(),
        json!({"id": id, "object": "file", "deleted": true})
    );
    assert_eq!(stored(&env.storage), BTreeSet::new(), "the blob is gone");
    let message = format!("no file found with id '{id}'");
    for r in [
        get_as(addr, &format!("/v1/files/{id}"), &[]).await,
        get_as(addr, &format!("/v1/files/{id}/content"), &[]).await,
        delete_as(addr, &format!("/v1/files/{id}"), &[]).await,
    ] {
        let m = openai_error(
            &r,
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("not_found"),
            None,
        );
        assert_eq!(m, message);
    }
    assert_eq!(list_ids(addr, "", &[]).await, Vec::<String>::new());
}

#[tokio::test]
async fn media_types_sizes_and_expiry() {
    let env = env("files-types", ", retention_days: 2", "").await;
    let addr = env.addr;
    // The part's own type wins; octet-stream or none: guessed from the name.
    for (name, part_type, expected) in [
        ("a.pdf", Some("application/pdf"), "application/pdf"),
        (
            "b.jsonl",
            Some("application/octet-stream"),
            "application/jsonl",
        ),
        ("c.csv", None, "text/csv"),
        ("d.PNG", None, "image/png"),
        ("e.unknown", None, "application/octet-stream"),
        (
            "f.md",
            Some("text/x-custom; charset=utf-8"),
            "text/x-custom",
        ),
    ] {
        let r = upload_as(addr, name, part_type, b"x,y\n1,2\n", "user_data", &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text());
        let f = r.json();
        let created = f["created_at"].as_u64().unwrap();
        assert_eq!(f["expires_at"], json!(created + 2 * 86_400), "{f}");
        let c = get_as(addr, &format!("/v1/files/{}/content", id_of(&f)), &[]).await;
        assert_eq!(c.header("content-type"), expected, "{name}");
        assert_eq!(c.header("content-length"), "8");
    }
    // An empty file is a file of 0 bytes.
    let f = upload_ok(addr, "empty.txt", b"", "user_data", &[]).await;
    assert_eq!(f["bytes"], 0);
    let c = get_as(addr, &format!("/v1/files/{}/content", id_of(&f)), &[]).await;
    assert_eq!(c.status, StatusCode::OK);
    assert_eq!(c.header("content-length"), "0");
    assert!(c.body.is_empty());
    // Every purpose OpenAI has is taken.
    for p in [
        "assistants",
        "batch",
        "fine-tune",
        "vision",
        "user_data",
        "evals",
    ] {
        assert_eq!(upload_ok(addr, "p.txt", b"p", p, &[]).await["purpose"], p);
    }
}

#[tokio::test]
async fn fields_are_checked() {
    let env = env("files-fields", "", "").await;
    let addr = env.addr;
    let before = tree(&env.root);
    let fh = file_headers(&quoted("a.txt"), Some("text/plain"));
    let other = b"Content-Disposition: form-data; name=\"note\"\r\n";
    let long_purpose = "p".repeat(100);
    let cases: Vec<(&str, Vec<u8>, &str, String)> = vec![
        (
            "no purpose",
            multipart(B, &[(&fh, b"data")]),
            "purpose",
            "'purpose' is required".into(),
        ),
        (
            "unknown purpose",
            multipart(B, &[(PURPOSE, b"nope"), (&fh, b"data")]),
            "purpose",
            "'nope' is not a purpose (assistants, batch, fine-tune, vision, user_data, evals)"
                .into(),
        ),
        (
            "purpose too long",
            multipart(B, &[(PURPOSE, long_purpose.as_bytes()), (&fh, b"data")]),
            "purpose",
            "purpose is too long".into(),
        ),
        (
            "unknown purpose after the file",
            multipart(B, &[(&fh, b"data"), (PURPOSE, b"nope")]),
            "purpose",
            "'nope' is not a purpose (assistants, batch, fine-tune, vision, user_data, evals)"
                .into(),
        ),
        (
            "no file part",
            multipart(B, &[(PURPOSE, b"user_data"), (other, b"hi")]),
            "file",
            "the upload has no 'file' part".into(),
        ),
        (
            "two files",
            multipart(B, &[(PURPOSE, b"user_data"), (&fh, b"one"), (&fh, b"two")]),
            "file",
            "only one file may be uploaded at a time".into(),
        ),
        (
            "file part without a file name",
            multipart(
                B,
                &[
                    (PURPOSE, b"user_data"),
                    (b"Content-Disposition: form-data; name=\"file\"\r\n", b"x"),
                ],
            ),
            "file",
            "'' is not a usable file name".into(),
        ),
    ];
    for (what, body, param, message) in cases {
        let r = post_files(addr, body, &multipart_type(), &[]).await;
        let m = openai_error(
            &r,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            Some(param),
        );
        assert_eq!(m, message, "{what}");
        assert_contained(&env.root, &before);
    }
    // The purpose may come after the file.
    let r = post_files(
        addr,
        multipart(B, &[(&fh, b"late"), (PURPOSE, b"vision")]),
        &multipart_type(),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["purpose"], "vision");
    // Unknown extra fields are ignored, wherever they are.
    let body = multipart(
        B,
        &[
            (other, b"before"),
            (PURPOSE, b"batch"),
            (&fh, b"data"),
            (other, b"after"),
        ],
    );
    let r = post_files(addr, body, &multipart_type(), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["bytes"], 4);
    assert_eq!(r.json()["purpose"], "batch");
}

#[tokio::test]
async fn list_filters_pages_and_orders() {
    let env = env("files-list", "", "").await;
    let addr = env.addr;
    let purposes = [
        "assistants",
        "user_data",
        "assistants",
        "batch",
        "user_data",
    ];
    let mut uploaded = Vec::new();
    for (i, p) in purposes.iter().enumerate() {
        uploaded.push(
            upload_ok(
                addr,
                &format!("f{i}.txt"),
                format!("file {i}").as_bytes(),
                p,
                &[],
            )
            .await,
        );
    }
    let r = get_as(addr, "/v1/files", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let all = r.json();
    assert_eq!(all["object"], "list");
    assert_eq!(all["has_more"], false);
    let desc = ids_of(&all);
    let mut sorted_desc = desc.clone();
    sorted_desc.sort();
    let mut sorted_up: Vec<String> = uploaded.iter().map(id_of).collect();
    sorted_up.sort();
    assert_eq!(sorted_desc, sorted_up, "every file listed once");
    assert_eq!(all["first_id"], json!(desc[0]));
    assert_eq!(all["last_id"], json!(desc[4]));
    // Newest first by default: created_at never increases; each entry is the file object.
    let created: Vec<u64> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["created_at"].as_u64().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");
    for f in all["data"].as_array().unwrap() {
        let u = uploaded.iter().find(|u| u["id"] == f["id"]).unwrap();
        assert_eq!(f, u);
    }
    assert_eq!(list_ids(addr, "?order=desc", &[]).await, desc);
    let mut asc = desc.clone();
    asc.reverse();
    assert_eq!(list_ids(addr, "?order=asc", &[]).await, asc);

    // purpose
    let of = |p: &str| -> Vec<String> {
        desc.iter()
            .filter(|id| {
                uploaded
                    .iter()
                    .any(|u| &id_of(u) == *id && u["purpose"] == p)
            })
            .cloned()
            .collect()
    };
    assert_eq!(of("assistants").len(), 2);
    assert_eq!(
        list_ids(addr, "?purpose=assistants", &[]).await,
        of("assistants")
    );
    assert_eq!(list_ids(addr, "?purpose=batch", &[]).await, of("batch"));
    let none = get_as(addr, "/v1/files?purpose=fine-tune", &[])
        .await
        .json();
    assert_eq!(
        none,
        json!({"object": "list", "first_id": null, "last_id": null, "has_more": false, "data": []})
    );

    // limit and after, both orders: the pages are the whole list, in order.
    for (order, full, limit, sizes) in [
        ("desc", &desc, 2, vec![2, 2, 1]),
        ("asc", &asc, 3, vec![3, 2]),
    ] {
        let mut walked = Vec::new();
        let mut after = String::new();
        let mut got_sizes = Vec::new();
        loop {
            let page = get_as(
                addr,
                &format!("/v1/files?order={order}&limit={limit}{after}"),
                &[],
            )
            .await
            .json();
            let ids = ids_of(&page);
            got_sizes.push(ids.len());
            assert_eq!(page["first_id"], json!(ids[0]));
            assert_eq!(page["last_id"], json!(ids.last().unwrap()));
            walked.extend(ids.clone());
            assert_eq!(page["has_more"], json!(walked.len() < 5), "{page}");
            if page["has_more"] == false {
                break;
            }
            after = format!("&after={}", ids.last().unwrap());
        }
        assert_eq!(&walked, full, "{order}");
        assert_eq!(got_sizes, sizes, "{order}");
    }
    // after with a purpose filter
    let ud = of("user_data");
    assert_eq!(
        list_ids(addr, "?purpose=user_data&limit=1", &[]).await,
        ud[..1]
    );
    assert_eq!(
        list_ids(addr, &format!("?purpose=user_data&after={}", ud[0]), &[]).await,
        ud[1..]
    );
    assert_eq!(
        list_ids(addr, &format!("?after={}", desc[4]), &[]).await,
        Vec::<String>::new()
    );

    // Bad parameters: 400 naming the parameter.
    let zero = "f".repeat(24);
    for (query, param, message) in [
        (
            "limit=0",
            "limit",
            "limit must be an integer from 1 to 10000, not '0'".to_string(),
        ),
        (
            "limit=10001",
            "limit",
            "limit must be an integer from 1 to 10000, not '10001'".into(),
        ),
        (
            "limit=ten",
            "limit",
            "limit must be an integer from 1 to 10000, not 'ten'".into(),
        ),
        (
            "order=sideways",
            "order",
            "order must be 'asc' or 'desc', not 'sideways'".into(),
        ),
        (
            &format!("after=file-{zero}"),
            "after",
            format!("no file 'file-{zero}' to list after"),
        ),
    ] {
        let r = get_as(addr, &format!("/v1/files?{query}"), &[]).await;
        let m = openai_error(
            &r,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            Some(param),
        );
        assert_eq!(m, message, "{query}");
    }
}

/// Files uploaded one after the other within the same second are listed in the order
/// they were uploaded (`order=asc`), newest first by default: `created_at` has whole
/// seconds, so what breaks its ties must be the upload order, not the (random) id.
#[tokio::test]
async fn list_order_is_upload_order_within_a_second() {
    let env = env("files-order", "", "").await;
    let addr = env.addr;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(id_of(
            &upload_ok(addr, &format!("o{i}.txt"), b"o", "user_data", &[]).await,
        ));
    }
    assert_eq!(list_ids(addr, "?order=asc", &[]).await, ids, "oldest first");
    ids.reverse();
    assert_eq!(list_ids(addr, "", &[]).await, ids, "newest first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_are_all_kept() {
    let env = env("files-concurrent", "", "").await;
    let addr = env.addr;
    let tasks: Vec<_> = (0..12u64)
        .map(|i| {
            tokio::spawn(async move {
                let content = random_bytes(100 + i, 50_000 + i as usize * 1_000);
                let f = upload_ok(addr, &format!("c{i}.bin"), &content, "batch", &[]).await;
                (id_of(&f), content)
            })
        })
        .collect();
    let mut files = Vec::new();
    for t in tasks {
        files.push(t.await.unwrap());
    }
    let mut listed = list_ids(addr, "", &[]).await;
    listed.sort();
    let mut ids: Vec<String> = files.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    assert_eq!(listed, ids);
    assert_eq!(stored(&env.storage), ids.iter().cloned().collect());
    for (id, content) in files {
        let c = get_as(addr, &format!("/v1/files/{id}/content"), &[]).await;
        assert!(c.body == content, "{id} differs");
    }
}

#[tokio::test]
async fn files_can_be_disabled() {
    let env = env("files-off", ", enabled: false", "").await;
    let r = upload_as(env.addr, "a.txt", None, b"a", "user_data", &[]).await;
    let m = openai_error(&r, StatusCode::NOT_FOUND, "not_found_error", None, None);
    assert_eq!(m, "no route for Files API (files.enabled is false)");
    let r = get_as(env.addr, "/v1/files", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(tree(&env.root), BTreeSet::new(), "nothing created");
}

// ---------------------------------------------------------------------------------------
// Ownership.

const KEYS: &str = "api_keys:
  mode: blocking
  api_keys:
    - {key: sk-alice-1, id: alice-key, user_id: alice, scopes: [files]}
    - {key: sk-alice-2, id: alice-other-key, user_id: alice, scopes: [files, chat]}
    - {key: sk-bob-1, id: bob-key, user_id: bob, scopes: [files]}
    - {key: sk-root-1, id: root-key, user_id: root, scopes: [files, admin]}
    - {key: sk-chat-1, id: chat-key, user_id: carol, scopes: [chat, write, read]}
    - {key: sk-admin-only, id: admin-only-key, user_id: dave, scopes: [admin]}
";

const ALICE: &[(&str, &str)] = &[("authorization", "Bearer sk-alice-1")];
const ALICE2: &[(&str, &str)] = &[("x-api-key", "sk-alice-2")];
const BOB: &[(&str, &str)] = &[("authorization", "Bearer sk-bob-1")];
const ROOT: &[(&str, &str)] = &[("authorization", "Bearer sk-root-1")];
const CHAT: &[(&str, &str)] = &[("authorization", "Bearer sk-chat-1")];
const ADMIN_ONLY: &[(&str, &str)] = &[("authorization", "Bearer sk-admin-only")];

#[tokio::test]
async fn files_belong_to_their_uploader() {
    let env = env(
        "files-owners",
        ", auth: {method: api_key, required_scope: files}",
        KEYS,
    )
    .await;
    let addr = env.addr;
    let a = id_of(&upload_ok(addr, "alice.txt", b"alice's", "user_data", ALICE).await);
    let b = id_of(&upload_ok(addr, "bob.txt", b"bob's", "user_data", BOB).await);
    let r = id_of(&upload_ok(addr, "root.txt", b"root's", "batch", ROOT).await);

    // Another user: 404 everywhere, as for an id that does not exist, and not listed.
    let not_found = format!("no file found with id '{a}'");
    for resp in [
        get_as(addr, &format!("/v1/files/{a}"), BOB).await,
        get_as(addr, &format!("/v1/files/{a}/content"), BOB).await,
        delete_as(addr, &format!("/v1/files/{a}"), BOB).await,
    ] {
        let m = openai_error(
            &resp,
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("not_found"),
            None,
        );
        assert_eq!(m, not_found);
    }
    assert_eq!(list_ids(addr, "", BOB).await, [b.as_str()]);
    let r400 = get_as(addr, &format!("/v1/files?after={a}"), BOB).await;
    assert_eq!(
        r400.status,
        StatusCode::BAD_REQUEST,
        "after= cannot name another's file"
    );
    // Bob's delete did nothing.
    assert_eq!(
        get_as(addr, &format!("/v1/files/{a}/content"), ALICE)
            .await
            .body,
        Bytes::from_static(b"alice's")
    );
    // The same user with another key sees it.
    assert_eq!(list_ids(addr, "", ALICE2).await, [a.as_str()]);
    assert_eq!(
        get_as(addr, &format!("/v1/files/{a}"), ALICE2).await.status,
        StatusCode::OK
    );
    // An admin (with the files scope) sees everything.
    let mut all = list_ids(addr, "", ROOT).await;
    all.sort();
    let mut expected = vec![a.clone(), b.clone(), r.clone()];
    expected.sort();
    assert_eq!(all, expected);
    assert_eq!(
        get_as(addr, &format!("/v1/files/{b}/content"), ROOT)
            .await
            .body,
        Bytes::from_static(b"bob's")
    );
    // Alice does not see the admin's.
    assert_eq!(
        get_as(addr, &format!("/v1/files/{r}"), ALICE).await.status,
        StatusCode::NOT_FOUND
    );

    // A key without the files scope: 403 on every route.
    for (auth, key) in [(CHAT, "chat-key"), (ADMIN_ONLY, "admin-only-key")] {
        for resp in [
            upload_as(addr, "x.txt", None, b"x", "user_data", auth).await,
            get_as(addr, "/v1/files", auth).await,
            get_as(addr, &format!("/v1/files/{a}"), auth).await,
            get_as(addr, &format!("/v1/files/{a}/content"), auth).await,
            delete_as(addr, &format!("/v1/files/{a}"), auth).await,
        ] {
            let m = openai_error(
                &resp,
                StatusCode::FORBIDDEN,
                "permission_error",
                Some("insufficient_scope"),
                None,
            );
            assert_eq!(m, format!("API key '{key}' lacks the 'files' scope"));
        }
    }
    // No key, or a wrong one: 401.
    for auth in [&[][..], &[("authorization", "Bearer sk-nobody")][..]] {
        for resp in [
            upload_as(addr, "x.txt", None, b"x", "user_data", auth).await,
            get_as(addr, "/v1/files", auth).await,
            get_as(addr, &format!("/v1/files/{a}"), auth).await,
            get_as(addr, &format!("/v1/files/{a}/content"), auth).await,
            delete_as(addr, &format!("/v1/files/{a}"), auth).await,
        ] {
            openai_error(
                &resp,
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                Some("invalid_api_key"),
                None,
            );
            assert_eq!(resp.header("www-authenticate"), "Bearer");
        }
    }
    // Alice deletes her own.
    assert_eq!(
        delete_as(addr, &format!("/v1/files/{a}"), ALICE)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(list_ids(addr, "", ALICE2).await, Vec::<String>::new());
    // The admin may delete another's.
    assert_eq!(
        delete_as(addr, &format!("/v1/files/{b}"), ROOT)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(list_ids(addr, "", BOB).await, Vec::<String>::new());
    assert_eq!(stored(&env.storage), BTreeSet::from([r]));
}

#[tokio::test]
async fn ownership_switches() {
    // admin_can_access_all: false — the admin is a user like any other.
    let env1 = env(
        "files-no-admin",
        ", auth: {method: api_key, admin_can_access_all: false}",
        KEYS,
    )
    .await;
    let a = id_of(&upload_ok(env1.addr, "a.txt", b"a", "user_data", ALICE).await);
    assert_eq!(list_ids(env1.addr, "", ROOT).await, Vec::<String>::new());
    assert_eq!(
        get_as(env1.addr, &format!("/v1/files/{a}"), ROOT)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // enforce_ownership: false — every caller sees every file.
    let env2 = env(
        "files-shared",
        ", auth: {method: api_key, enforce_ownership: false}",
        KEYS,
    )
    .await;
    let a = id_of(&upload_ok(env2.addr, "a.txt", b"a", "user_data", ALICE).await);
    assert_eq!(list_ids(env2.addr, "", BOB).await, [a.as_str()]);
    assert_eq!(
        get_as(env2.addr, &format!("/v1/files/{a}/content"), BOB)
            .await
            .body,
        Bytes::from_static(b"a")
    );

    // method: api_key under permissive keys: a caller without a key is still refused.
    let env3 = env(
        "files-permissive",
        ", auth: {method: api_key}",
        &KEYS.replace("mode: blocking", "mode: permissive"),
    )
    .await;
    let r = upload_as(env3.addr, "a.txt", None, b"a", "user_data", &[]).await;
    let m = openai_error(
        &r,
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        Some("invalid_api_key"),
        None,
    );
    assert_eq!(
        m,
        "the Files API needs an API key (files.auth.method: api_key)"
    );
    assert_eq!(stored(&env3.storage), BTreeSet::new());

    // Another required_scope: that scope, and not `files`, is what is needed.
    let env5 = env(
        "files-write-scope",
        ", auth: {method: api_key, required_scope: write}",
        KEYS,
    )
    .await;
    let c = id_of(&upload_ok(env5.addr, "c.txt", b"c", "user_data", CHAT).await);
    let r = get_as(env5.addr, &format!("/v1/files/{c}"), ALICE).await;
    let m = openai_error(
        &r,
        StatusCode::FORBIDDEN,
        "permission_error",
        Some("insufficient_scope"),
        None,
    );
    assert_eq!(m, "API key 'alice-key' lacks the 'write' scope");

    // method: none with keys: a key of any scope may use it, files still owned.
    let env4 = env("files-any-key", "", KEYS).await;
    let c = id_of(&upload_ok(env4.addr, "c.txt", b"c", "user_data", CHAT).await);
    assert_eq!(list_ids(env4.addr, "", CHAT).await, [c.as_str()]);
    assert_eq!(list_ids(env4.addr, "", ALICE).await, Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------
// Hostile input.

#[tokio::test]
async fn hostile_file_names_never_become_paths() {
    let env = env("files-names", "", "").await;
    let addr = env.addr;
    let before = tree(&env.root);
    let name_512 = format!("{}.txt", "y".repeat(508));
    enum Expect {
        Stored(String, String),
        Refused(String),
    }
    use Expect::*;
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "slash",
            quoted("a/b/report.txt"),
            Stored("report.txt".into(), "report.txt".into()),
        ),
        (
            "absolute",
            quoted("/etc/passwd"),
            Stored("passwd".into(), "passwd".into()),
        ),
        (
            "backslash",
            quoted(r"C:\Users\x\notes.txt"),
            Stored("notes.txt".into(), "notes.txt".into()),
        ),
        (
            "dot-dot",
            quoted("../../../../escape.txt"),
            Stored("escape.txt".into(), "escape.txt".into()),
        ),
        (
            "dot-dot backslash",
            quoted(r"..\..\..\..\escape2.txt"),
            Stored("escape2.txt".into(), "escape2.txt".into()),
        ),
        (
            "mixed",
            quoted(r"..\../..\/escape3.txt"),
            Stored("escape3.txt".into(), "escape3.txt".into()),
        ),
        (
            "quote",
            quoted(r#"we\"ird.txt"#),
            Stored("we\"ird.txt".into(), "we_ird.txt".into()),
        ),
        (
            "percent NUL stays text",
            b"filename=a%00b.txt".to_vec(),
            Stored("a%00b.txt".into(), "a%00b.txt".into()),
        ),
        (
            "512 bytes",
            quoted(&name_512),
            Stored(name_512.clone(), name_512.clone()),
        ),
        (
            "only dots",
            quoted(".."),
            Refused("'..' is not a usable file name".into()),
        ),
        (
            "a directory",
            quoted("../"),
            Refused("'../' is not a usable file name".into()),
        ),
        (
            "root",
            quoted("/"),
            Refused("'/' is not a usable file name".into()),
        ),
        (
            "dot",
            quoted("dir/."),
            Refused("'dir/.' is not a usable file name".into()),
        ),
        (
            "tab",
            quoted("a\tb.txt"),
            Refused("'a\\tb.txt' is not a usable file name".into()),
        ),
        (
            "blank",
            quoted("   "),
            Refused("'   ' is not a usable file name".into()),
        ),
        (
            "10 KB",
            quoted(&"x".repeat(10_240)),
            Refused("the file name is 10240 bytes long; at most 512 are allowed".into()),
        ),
        (
            "10 KB of two-byte characters",
            quoted(&"é".repeat(5_120)),
            Refused("the file name is 10240 bytes long; at most 512 are allowed".into()),
        ),
        (
            "10 KB of ../",
            quoted(&format!("{}x", "../".repeat(3_413))),
            Refused("the file name is 10240 bytes long; at most 512 are allowed".into()),
        ),
        (
            "513 bytes",
            quoted(&"z".repeat(513)),
            Refused("the file name is 513 bytes long; at most 512 are allowed".into()),
        ),
    ];
    let mut kept = Vec::new();
    for (what, attr, expect) in cases {
        let fh = file_headers(&attr, Some("text/plain"));
        let body = multipart(B, &[(PURPOSE, b"user_data"), (&fh, what.as_bytes())]);
        let r = raw(addr, post_head(Some(&multipart_type()), body.len()), body).await;
        match expect {
            Stored(name, disposition) => {
                assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text());
                let f = r.json();
                assert_eq!(f["filename"], name, "{what}");
                let id = id_of(&f);
                let c = get_as(addr, &format!("/v1/files/{id}/content"), &[]).await;
                assert_eq!(c.body, Bytes::copy_from_slice(what.as_bytes()), "{what}");
                assert_eq!(
                    c.header("content-disposition"),
                    format!("attachment; filename=\"{disposition}\""),
                    "{what}"
                );
                kept.push(id);
            }
            Refused(message) => {
                let m = openai_error(
                    &r,
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    None,
                    Some("file"),
                );
                assert_eq!(m, message, "{what}");
            }
        }
        assert_contained(&env.root, &before);
    }
    assert_eq!(stored(&env.storage), kept.into_iter().collect());
    // Nothing named after a client's file name anywhere under the root.
    for p in tree(&env.root) {
        assert!(
            !p.contains("escape") && !p.contains("passwd") && !p.contains("report"),
            "{p}"
        );
    }
    assert_serving(addr, &[]).await;
}

/// A NUL in a quoted file name is refused by the part-header parser; an unquoted one that
/// is percent-encoded stays text (above). Either way no file.
#[tokio::test]
async fn nul_in_a_file_name_is_refused() {
    let env = env("files-nul", "", "").await;
    let before = tree(&env.root);
    for attr in [
        &b"filename=\"a\0b.txt\""[..],
        b"filename=\"\0\"",
        b"filename=\"../\0/x\"",
    ] {
        let fh = file_headers(attr, None);
        let body = multipart(B, &[(PURPOSE, b"user_data"), (&fh, b"nul")]);
        let r = raw(
            env.addr,
            post_head(Some(&multipart_type()), body.len()),
            body,
        )
        .await;
        let m = openai_error(
            &r,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            Some("file"),
        );
        assert!(m.starts_with("the multipart body is malformed: "), "{m}");
        assert!(m.contains("header"), "{m}");
        assert_contained(&env.root, &before);
    }
    assert_eq!(stored(&env.storage), BTreeSet::new());
    assert_serving(env.addr, &[]).await;
}

#[tokio::test]
async fn bad_framing_is_a_400() {
    let env = env("files-framing", "", "").await;
    let addr = env.addr;
    let before = tree(&env.root);
    let good = upload_body("a.txt", Some("text/plain"), b"content", "user_data");
    let unterminated = {
        let mut b = good.clone();
        b.truncate(good.len() - format!("\r\n--{B}--\r\n").len());
        b
    };
    let json_body = br#"{"file":"a.txt","purpose":"user_data"}"#.to_vec();
    let cases: Vec<(&str, Option<String>, Vec<u8>, String)> = vec![
        (
            "no content type",
            None,
            good.clone(),
            "the request must be multipart/form-data (no Content-Type)".into(),
        ),
        (
            "missing boundary",
            Some("multipart/form-data".into()),
            good.clone(),
            "the Content-Type must be multipart/form-data with a boundary, not 'multipart/form-data'".into(),
        ),
        (
            "JSON",
            Some("application/json".into()),
            json_body,
            "the Content-Type must be multipart/form-data with a boundary, not 'application/json'".into(),
        ),
        (
            "text with a boundary",
            Some(format!("text/plain; boundary={B}")),
            good.clone(),
            format!("the Content-Type must be multipart/form-data with a boundary, not 'text/plain; boundary={B}'"),
        ),
        (
            "wrong boundary",
            Some("multipart/form-data; boundary=SomethingElse".into()),
            good.clone(),
            "the multipart body is malformed: incomplete multipart stream".into(),
        ),
        (
            "empty body",
            Some(multipart_type()),
            Vec::new(),
            "the multipart body is malformed: incomplete multipart stream".into(),
        ),
        (
            "no closing delimiter",
            Some(multipart_type()),
            unterminated,
            "the multipart body is malformed: field \"file\" received with incomplete data".into(),
        ),
    ];
    for (what, ct, body, message) in cases {
        let r = raw(addr, post_head(ct.as_deref(), body.len()), body).await;
        let m = openai_error(
            &r,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            Some("file"),
        );
        assert_eq!(m, message, "{what}");
        assert_contained(&env.root, &before);
    }
    assert_eq!(stored(&env.storage), BTreeSet::new());
    assert_serving(addr, &[]).await;
}

#[tokio::test]
async fn huge_part_headers_are_refused_without_buffering_them() {
    let env = env("files-headers", "", "").await;
    let addr = env.addr;
    let before = tree(&env.root);
    let many_lines: Vec<u8> = {
        let mut h = file_headers(&quoted("h.txt"), Some("text/plain"));
        for i in 0..20_000 {
            h.extend_from_slice(format!("X-Pad-{i:05}: {}\r\n", "a".repeat(90)).as_bytes());
        }
        h
    };
    let one_line: Vec<u8> = {
        let mut h = file_headers(&quoted("h.txt"), Some("text/plain"));
        h.extend_from_slice(format!("X-Pad: {}\r\n", "b".repeat(2 << 20)).as_bytes());
        h
    };
    let long_purpose_header: Vec<u8> = {
        let mut h = PURPOSE.to_vec();
        h.extend_from_slice(format!("X-Pad: {}\r\n", "c".repeat(2 << 20)).as_bytes());
        h
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "2 MB of header lines",
            multipart(B, &[(PURPOSE, b"user_data"), (&many_lines, b"data")]),
        ),
        (
            "a 2 MB header line",
            multipart(B, &[(PURPOSE, b"user_data"), (&one_line, b"data")]),
        ),
        (
            "2 MB on the purpose part",
            multipart(B, &[(&long_purpose_header, b"user_data")]),
        ),
    ];
    let mut messages = Vec::new();
    for (what, body) in cases {
        assert!(body.len() > 2 << 20, "{what}");
        let r = raw(addr, post_head(Some(&multipart_type()), body.len()), body).await;
        let m = openai_error(
            &r,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            Some("file"),
        );
        messages.push((what, m));
        assert_contained(&env.root, &before);
    }
    assert_serving(addr, &[]).await;
    // The message says what is wrong (the reason the router gives is not lost on the way).
    for (what, m) in messages {
        assert_eq!(
            m,
            "the multipart body is malformed: failed to read stream: a multipart part header is larger than 1MB",
            "{what}"
        );
    }
}

#[tokio::test]
async fn a_truncated_upload_leaves_nothing() {
    let env = env("files-truncated", "", "").await;
    let addr = env.addr;
    let before = tree(&env.root);
    let content = random_bytes(7, 400_000);
    let body = upload_body("cut.bin", None, &content, "user_data");
    let mut half_close_message = String::new();
    for close in ["half", "whole"] {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        // Declares more than it sends: the file part is under way when the client goes.
        s.write_all(post_head(Some(&multipart_type()), body.len() + 100_000).as_bytes())
            .await
            .unwrap();
        s.write_all(&body[..300_000]).await.unwrap();
        s.flush().await.unwrap();
        let storage = env.storage.clone();
        eventually(
            Duration::from_secs(10),
            "the upload is written to a .tmp",
            || stored(&storage).iter().any(|n| n.ends_with(".tmp")),
        )
        .await;
        if close == "half" {
            // EOF on the request: the router answers 400 on what is left.
            s.shutdown().await.unwrap();
            let r = tokio::time::timeout(Duration::from_secs(10), read_response(&mut s))
                .await
                .expect("no answer after the half close");
            let r = r.expect("no response after the half close");
            let m = openai_error(
                &r,
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                Some("file"),
            );
            half_close_message = m;
        } else {
            drop(s);
        }
        eventually(Duration::from_secs(10), "the .tmp is removed", || {
            !stored(&storage).iter().any(|n| n.ends_with(".tmp"))
        })
        .await;
        assert_contained(&env.root, &before);
        assert_eq!(stored(&env.storage), BTreeSet::new(), "{close}");
        assert_eq!(
            list_ids(addr, "", &[]).await,
            Vec::<String>::new(),
            "{close}"
        );
    }
    assert_serving(addr, &[]).await;
    // The message says what happened (the reason the router gives is not lost on the way).
    assert!(
        half_close_message.starts_with(
            "the multipart body is malformed: failed to read stream: the upload broke off: "
        ),
        "{half_close_message}"
    );
}

#[tokio::test]
async fn ids_that_are_not_ours_are_404() {
    let env = env("files-ids", "", "").await;
    let addr = env.addr;
    let mine = id_of(&upload_ok(addr, "mine.txt", b"mine", "user_data", &[]).await);
    // Something an id might be tricked into reaching.
    std::fs::write(env.root.join("x"), "secret").unwrap();
    let before = tree(&env.root);
    let long = format!("file-{}", "a".repeat(1019));
    let cases: Vec<(String, String)> = vec![
        ("file-..%2F..%2Fx".into(), "file-../../x".into()),
        (
            "file-..%2F..%2F..%2F..%2F..%2Fx".into(),
            "file-../../../../../x".into(),
        ),
        ("file-zz".into(), "file-zz".into()),
        (long.clone(), long.clone()),
        (format!("{mine}.tmp"), format!("{mine}.tmp")),
        (format!("{mine}%00"), format!("{mine}\0")),
        (
            mine.to_uppercase().replace("FILE-", "file-"),
            mine.to_uppercase().replace("FILE-", "file-"),
        ),
        (
            format!("file-{}", "0".repeat(24)),
            format!("file-{}", "0".repeat(24)),
        ),
        ("..".into(), "..".into()),
        ("%2E%2E".into(), "..".into()),
    ];
    for (in_path, id) in cases {
        let message = format!("no file found with id '{id}'");
        for r in [
            get_as(addr, &format!("/v1/files/{in_path}"), &[]).await,
            get_as(addr, &format!("/v1/files/{in_path}/content"), &[]).await,
            delete_as(addr, &format!("/v1/files/{in_path}"), &[]).await,
        ] {
            let m = openai_error(
                &r,
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("not_found"),
                None,
            );
            assert_eq!(m, message, "{in_path}");
        }
    }
    // Unencoded: no such route.
    let r = get_as(addr, "/v1/files/file-../../x", &[]).await;
    let m = openai_error(&r, StatusCode::NOT_FOUND, "not_found_error", None, None);
    assert_eq!(m, "no route for GET /v1/files/file-../../x");
    assert_contained(&env.root, &before);
    assert_eq!(
        std::fs::read_to_string(env.root.join("x")).unwrap(),
        "secret"
    );
    assert_eq!(
        get_as(addr, &format!("/v1/files/{mine}/content"), &[])
            .await
            .body,
        Bytes::from_static(b"mine")
    );
    assert_serving(addr, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_during_a_download_lets_it_finish() {
    let env = env("files-delete-reading", "", "").await;
    let addr = env.addr;
    let content = random_bytes(42, 32 << 20);
    let id = id_of(&upload_ok(addr, "big.bin", &content, "batch", &[]).await);

    let client = continuum::backend::build_client(1, Duration::from_secs(5));
    let req = http::Request::get(format!("http://{addr}/v1/files/{id}/content"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-length"],
        (32u64 << 20).to_string().as_str()
    );
    let mut body = resp.into_body();
    let mut got = Vec::with_capacity(content.len());
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    got.extend_from_slice(&first);
    assert!(got.len() < content.len());

    let d = delete_as(addr, &format!("/v1/files/{id}"), &[]).await;
    assert_eq!(
        d.json(),
        json!({"id": id, "object": "file", "deleted": true})
    );
    assert!(
        !env.storage.join(&id).exists(),
        "the blob is unlinked at once"
    );
    assert_eq!(
        get_as(addr, &format!("/v1/files/{id}"), &[]).await.status,
        StatusCode::NOT_FOUND
    );

    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            got.extend_from_slice(&data);
        }
    }
    assert_eq!(got.len(), content.len());
    assert!(got == content, "the download completed with every byte");
    let r = get_as(addr, &format!("/v1/files/{id}/content"), &[]).await;
    openai_error(
        &r,
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        Some("not_found"),
        None,
    );
    assert_eq!(stored(&env.storage), BTreeSet::new());
}

#[tokio::test]
async fn over_the_size_limit_is_413_and_leaves_nothing() {
    let env = env("files-limit", ", max_file_size: 1000", "").await;
    let addr = env.addr;
    let before = tree(&env.root);
    let limit_message = "the file is larger than the 1000-byte limit (files.max_file_size)";

    // Exactly the limit: taken.
    let f = upload_ok(addr, "max.bin", &[1u8; 1000], "user_data", &[]).await;
    assert_eq!(f["bytes"], 1000);
    let kept = id_of(&f);
    let before = {
        let mut b = before;
        b.extend(tree(&env.root));
        b
    };

    // One byte more, declared within the slack: refused as it streams.
    let r = upload_as(addr, "over.bin", None, &[2u8; 1001], "user_data", &[]).await;
    let m = openai_error(
        &r,
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request_error",
        Some("file_too_large"),
        None,
    );
    assert_eq!(m, limit_message);
    assert_contained(&env.root, &before);

    // 500 KB, and 3 MB (declared far over: refused before the body is read).
    for n in [500_000, 3 << 20] {
        let body = upload_body("big.bin", None, &vec![3u8; n], "user_data");
        let r = raw(addr, post_head(Some(&multipart_type()), body.len()), body).await;
        let m = openai_error(
            &r,
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            Some("file_too_large"),
            None,
        );
        assert_eq!(m, limit_message, "{n}");
        assert_contained(&env.root, &before);
    }

    // Declared 10 GB, nothing sent: answered at once.
    let started = Instant::now();
    let r = raw(
        addr,
        post_head(Some(&multipart_type()), 10 << 30),
        Vec::new(),
    )
    .await;
    let m = openai_error(
        &r,
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request_error",
        Some("file_too_large"),
        None,
    );
    assert_eq!(m, limit_message);
    assert!(started.elapsed() < Duration::from_secs(5));

    // Chunked, with no length: refused as it streams.
    let body = upload_body("chunked.bin", None, &vec![4u8; 5_000], "user_data");
    let mut chunked = Vec::new();
    for c in body.chunks(700) {
        chunked.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        chunked.extend_from_slice(c);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = format!(
        "POST /v1/files HTTP/1.1\r\nhost: localhost\r\ncontent-type: {}\r\ntransfer-encoding: chunked\r\n\r\n",
        multipart_type()
    );
    let r = raw(addr, head, chunked).await;
    let m = openai_error(
        &r,
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request_error",
        Some("file_too_large"),
        None,
    );
    assert_eq!(m, limit_message);

    assert_contained(&env.root, &before);
    assert_eq!(stored(&env.storage), BTreeSet::from([kept.clone()]));
    assert_eq!(list_ids(addr, "", &[]).await, [kept]);
    assert_serving(addr, &[]).await;
}

#[tokio::test]
async fn storage_that_cannot_be_created_is_a_500_naming_it() {
    let root = temp_dir("files-blocked");
    // storage_path is a regular file; or its parent is.
    std::fs::write(root.join("blocker"), "not a directory").unwrap();
    for (storage, why) in [
        (root.join("blocker"), "File exists (os error 17)"),
        (
            root.join("blocker").join("files"),
            "Not a directory (os error 20)",
        ),
    ] {
        let router = start_router(&format!(
            "store: {{path: \"{}\"}}\nfiles: {{storage_path: \"{}\"}}\n{MOCK}",
            root.join("store.redb").display(),
            storage.display()
        ))
        .await;
        let addr = router.tcp_addr().unwrap();
        let before = tree(&root);
        let r = upload_as(addr, "a.txt", None, b"abc", "user_data", &[]).await;
        let m = openai_error(
            &r,
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            Some("store_error"),
            None,
        );
        assert_eq!(
            m,
            format!(
                "the upload cannot be stored under {}: {why}",
                storage.display()
            )
        );
        let after = tree(&root);
        assert_eq!(after, before, "nothing written");
        assert_eq!(
            std::fs::read_to_string(root.join("blocker")).unwrap(),
            "not a directory"
        );
        // Still serving: lists (nothing), health.
        assert_eq!(list_ids(addr, "", &[]).await, Vec::<String>::new());
        assert_eq!(get_path(addr, "/health").await.status, StatusCode::OK);
        router.shutdown().await;
    }
}

/// The blob is written but its metadata cannot be committed (the store's path is a
/// directory): 500 naming the store, and the written upload is removed.
#[tokio::test]
async fn metadata_that_cannot_be_committed_is_a_500_and_leaves_no_blob() {
    let root = temp_dir("files-store-blocked");
    let store = root.join("store-is-a-directory");
    std::fs::create_dir_all(&store).unwrap();
    let storage = root.join(STORAGE);
    let router = start_router(&format!(
        "store: {{path: \"{}\"}}\nfiles: {{storage_path: \"{}\"}}\n{MOCK}",
        store.display(),
        storage.display()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = upload_as(
        addr,
        "a.txt",
        None,
        &random_bytes(5, 100_000),
        "user_data",
        &[],
    )
    .await;
    let m = openai_error(
        &r,
        StatusCode::INTERNAL_SERVER_ERROR,
        "api_error",
        Some("store_error"),
        None,
    );
    assert!(
        m.contains(&store.display().to_string()),
        "names the store: {m}"
    );
    assert_eq!(stored(&storage), BTreeSet::new(), "no blob, no .tmp");
    assert_eq!(get_path(addr, "/health").await.status, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------
// Metadata in memory.

#[tokio::test]
async fn memory_metadata_works_and_touches_no_store() {
    let root = temp_dir("files-memory");
    let storage = root.join(STORAGE);
    let yaml = format!(
        "store: {{path: \"{}\"}}\nfiles: {{storage_path: \"{}\", metadata_storage: memory, cleanup_orphans_on_startup: true}}\n{MOCK}",
        root.join("store.redb").display(),
        storage.display()
    );
    let router = start_router(&yaml).await;
    let addr = router.tcp_addr().unwrap();
    let content = random_bytes(9, 200_000);
    let a = upload_ok(addr, "a.bin", &content, "assistants", &[]).await;
    let a_id = id_of(&a);
    let b_id = id_of(&upload_ok(addr, "b.txt", b"bee", "batch", &[]).await);
    let mut listed = list_ids(addr, "", &[]).await;
    listed.sort();
    let mut both = vec![a_id.clone(), b_id.clone()];
    both.sort();
    assert_eq!(listed, both);
    assert_eq!(list_ids(addr, "?purpose=batch", &[]).await, [b_id.as_str()]);
    assert_eq!(
        get_as(addr, &format!("/v1/files/{a_id}"), &[]).await.json(),
        a
    );
    let c = get_as(addr, &format!("/v1/files/{a_id}/content"), &[]).await;
    assert!(c.body == content);
    assert_eq!(c.header("content-length"), "200000");
    let d = delete_as(addr, &format!("/v1/files/{a_id}"), &[]).await;
    assert_eq!(
        d.json(),
        json!({"id": a_id, "object": "file", "deleted": true})
    );
    assert_eq!(
        get_as(addr, &format!("/v1/files/{a_id}"), &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(stored(&storage), BTreeSet::from([b_id.clone()]));
    assert!(
        !root.join("store.redb").exists(),
        "memory metadata never opens the store"
    );
    router.shutdown().await;

    // Restarted: memory is gone, so is the blob nobody refers to (cleanup_orphans_on_startup).
    let router = start_router(&yaml).await;
    let addr = router.tcp_addr().unwrap();
    assert_eq!(list_ids(addr, "", &[]).await, Vec::<String>::new());
    assert_eq!(stored(&storage), BTreeSet::new());
    assert_eq!(
        get_as(addr, &format!("/v1/files/{b_id}"), &[]).await.status,
        StatusCode::NOT_FOUND
    );
}

/// `retention_days`: files older than that are deleted at start (metadata and blob); the
/// others are kept and carry their `expires_at`.
#[tokio::test]
async fn files_past_their_retention_are_deleted_at_start() {
    let root = temp_dir("files-retention");
    let storage = root.join(STORAGE);
    let store = root.join("store.redb");
    let yaml = |days: u32| {
        format!(
            "store: {{path: \"{}\"}}\nfiles: {{storage_path: \"{}\", retention_days: {days}}}\n{MOCK}",
            store.display(),
            storage.display()
        )
    };
    let router = start_router(&yaml(0)).await;
    let addr = router.tcp_addr().unwrap();
    let old = upload_ok(addr, "old.txt", b"old", "user_data", &[]).await;
    let new = upload_ok(addr, "new.txt", b"new", "user_data", &[]).await;
    assert_eq!(old["expires_at"], Value::Null);
    router.shutdown().await;

    // Ten days pass for one of them.
    let old_id = id_of(&old);
    {
        use redb::ReadableTable;
        let table: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("files");
        // (The router's aborted background tasks let go of the store as the runtime drops them.)
        let deadline = Instant::now() + Duration::from_secs(10);
        let db = loop {
            match redb::Database::open(&store) {
                Ok(db) => break db,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "the store stays open after shutdown: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(table).unwrap();
            let stored = t.get(old_id.as_str()).unwrap().unwrap().value().to_vec();
            let mut meta: Value = serde_json::from_slice(&stored).unwrap();
            meta["created_at"] = json!(meta["created_at"].as_u64().unwrap() - 10 * 86_400);
            t.insert(
                old_id.as_str(),
                serde_json::to_vec(&meta).unwrap().as_slice(),
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }

    let router = start_router(&yaml(7)).await;
    let addr = router.tcp_addr().unwrap();
    let new_id = id_of(&new);
    let st = storage.clone();
    eventually(Duration::from_secs(10), "the old blob is deleted", || {
        !st.join(&old_id).exists()
    })
    .await;
    assert_eq!(list_ids(addr, "", &[]).await, [new_id.as_str()]);
    assert_eq!(
        get_as(addr, &format!("/v1/files/{old_id}"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let f = get_as(addr, &format!("/v1/files/{new_id}"), &[])
        .await
        .json();
    assert_eq!(
        f["expires_at"],
        json!(new["created_at"].as_u64().unwrap() + 7 * 86_400)
    );
    assert_eq!(stored(&storage), BTreeSet::from([new_id]));
}

// ---------------------------------------------------------------------------------------
// Crashes and restarts, with the binary.

fn serve_config(root: &Path, extra: &str) -> PathBuf {
    let config = root.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "server: {{bind_address: \"127.0.0.1:0\"}}\nstore: {{path: \"{}\"}}\nfiles: {{storage_path: \"{}\"{extra}}}\n{MOCK}",
            root.join("store.redb").display(),
            root.join("files").display()
        ),
    )
    .unwrap();
    config
}

fn serve(config: &Path) -> ServeProcess {
    ServeProcess::start(bin().args(["serve", "--config"]).arg(config), 1)
}

fn kill9(p: &mut ServeProcess) {
    p.child.kill().unwrap();
    p.child.wait().unwrap();
}

/// A well-formed id nobody issued.
fn stray_id(seed: u64) -> String {
    format!("file-{:024x}", u128::from(seed) * 0x1000_0000_0001)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_keeps_every_file_byte_for_byte() {
    let root = temp_dir("files-restart");
    let storage = root.join("files");
    let config = serve_config(&root, "");
    let mut p = serve(&config);
    let addr = p.tcp_addr();
    let mut files = Vec::new();
    for i in 0..12u64 {
        let content = random_bytes(1000 + i, 200_000 + 37_000 * i as usize);
        let f = upload_ok(addr, &format!("r{i}.bin"), &content, "batch", &[]).await;
        files.push((f, sha256(&content)));
    }
    kill9(&mut p);

    // A crash window: an upload written to its .tmp, never committed.
    let uncommitted = stray_id(1);
    std::fs::write(
        storage.join(format!("{uncommitted}.tmp")),
        b"half an upload",
    )
    .unwrap();

    let p = serve(&config);
    let addr = p.tcp_addr();
    let mut listed = list_ids(addr, "?order=asc", &[]).await;
    listed.sort();
    let mut ids: Vec<String> = files.iter().map(|(f, _)| id_of(f)).collect();
    ids.sort();
    assert_eq!(listed, ids, "every file listed after kill -9");
    for (f, digest) in &files {
        let id = id_of(f);
        assert_eq!(
            &get_as(addr, &format!("/v1/files/{id}"), &[]).await.json(),
            f
        );
        let c = get_as(addr, &format!("/v1/files/{id}/content"), &[]).await;
        assert_eq!(c.status, StatusCode::OK);
        assert_eq!(&sha256(&c.body), digest, "{id} is byte-identical");
    }
    // Exactly the blobs with metadata: no .tmp, no orphan.
    assert_eq!(
        stored(&storage),
        ids.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert_eq!(
        get_as(addr, &format!("/v1/files/{uncommitted}"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_reconciles_every_crash_window() {
    let root = temp_dir("files-reconcile");
    let storage = root.join("files");
    let config = serve_config(&root, ", cleanup_orphans_on_startup: true");
    let mut p = serve(&config);
    let addr = p.tcp_addr();
    let renamed = random_bytes(1, 300_000);
    let lost = random_bytes(2, 100_000);
    let kept = random_bytes(3, 250_000);
    let renamed_f = upload_ok(addr, "renamed.bin", &renamed, "batch", &[]).await;
    let lost_id = id_of(&upload_ok(addr, "lost.bin", &lost, "batch", &[]).await);
    let kept_f = upload_ok(addr, "kept.bin", &kept, "batch", &[]).await;
    let renamed_id = id_of(&renamed_f);
    let kept_id = id_of(&kept_f);

    // An upload in progress when the process dies.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = upload_body("dying.bin", None, &random_bytes(4, 600_000), "batch");
    s.write_all(post_head(Some(&multipart_type()), body.len()).as_bytes())
        .await
        .unwrap();
    s.write_all(&body[..400_000]).await.unwrap();
    let st = storage.clone();
    eventually(
        Duration::from_secs(10),
        "the dying upload has its .tmp",
        || stored(&st).iter().any(|n| n.ends_with(".tmp")),
    )
    .await;
    kill9(&mut p);
    drop(s);
    let dying_tmp: Vec<String> = stored(&storage)
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert_eq!(dying_tmp.len(), 1);

    // Committed, but killed before the rename: the blob is still <id>.tmp.
    std::fs::rename(
        storage.join(&renamed_id),
        storage.join(format!("{renamed_id}.tmp")),
    )
    .unwrap();
    // Metadata whose blob is gone.
    std::fs::remove_file(storage.join(&lost_id)).unwrap();
    // A .tmp and a blob nobody committed, and a file that is not ours at all.
    let partial = stray_id(7);
    let orphan = stray_id(8);
    std::fs::write(storage.join(format!("{partial}.tmp")), b"partial").unwrap();
    std::fs::write(storage.join(&orphan), b"orphan").unwrap();
    std::fs::write(storage.join("README"), b"not a blob").unwrap();

    let mut p = serve(&config);
    let addr = p.tcp_addr();
    let reconciled = p
        .seen
        .iter()
        .find(|l| l.contains("files reconciled at start"))
        .cloned()
        .unwrap_or_else(|| panic!("no reconciliation line:\n{}", p.seen.join("\n")));
    for part in ["completed=1", "dropped=1", "partial=2", "orphans=1"] {
        assert!(reconciled.contains(part), "{part}: {reconciled}");
    }
    let mut listed = list_ids(addr, "", &[]).await;
    listed.sort();
    let mut expected = vec![renamed_id.clone(), kept_id.clone()];
    expected.sort();
    assert_eq!(listed, expected);
    let c = get_as(addr, &format!("/v1/files/{renamed_id}/content"), &[]).await;
    assert!(c.body == renamed, "the interrupted rename was finished");
    let c = get_as(addr, &format!("/v1/files/{kept_id}/content"), &[]).await;
    assert!(c.body == kept);
    assert_eq!(
        get_as(addr, &format!("/v1/files/{lost_id}"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let mut on_disk = expected.clone();
    on_disk.push("README".into());
    assert_eq!(
        stored(&storage),
        on_disk.into_iter().collect::<BTreeSet<_>>()
    );
    kill9(&mut p);
}
