//! Multipart parsing: the `model` field routing reads from image edit and variation forms
//! (and its rewrite, which must be what a second read finds), the Content-Type boundary
//! check, and a whole `POST /v1/files` upload streamed in odd pieces. An input starting
//! with a `multipart/...` line gives its own Content-Type.
#![no_main]

// The allocation guard (see `continuum_fuzz::MAX_ALLOCATION`).
extern crate continuum_fuzz;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use continuum::config::files::{FilesConfig, MetadataStorage};
use continuum::files::{upload, Files, Upload};
use continuum::fuzzing::{multipart_model, multipart_replace_model};
use continuum::protocol::images;
use continuum::store::Store;
use continuum_fuzz::chunks;
use http::HeaderValue;
use libfuzzer_sys::fuzz_target;

const DEFAULT_TYPE: &str = "multipart/form-data; boundary=XyZ";

/// The Content-Type and the body of an input.
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    if data.starts_with(b"multipart/") {
        if let Some(nl) = data.iter().position(|b| *b == b'\n') {
            return (&data[..nl], &data[nl + 1..]);
        }
    }
    (DEFAULT_TYPE.as_bytes(), data)
}

struct Uploads {
    runtime: tokio::runtime::Runtime,
    files: Files,
}

fn uploads() -> &'static Uploads {
    static UPLOADS: OnceLock<Uploads> = OnceLock::new();
    UPLOADS.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        // One directory for every run: each upload is deleted once it is read back.
        let dir = base.join("continuum-fuzz-multipart");
        let config = FilesConfig {
            storage_path: dir.join("files"),
            metadata_storage: MetadataStorage::Memory,
            max_file_size: 1024,
            ..FilesConfig::default()
        };
        let store = Arc::new(Store::new(&dir.join("store.redb")));
        Uploads {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
            files: Files::new(&config, &store),
        }
    })
}

fn upload_once(content_type: &str, body: &[u8]) {
    let u = uploads();
    let pieces: Vec<Result<Bytes, Infallible>> = chunks(body)
        .into_iter()
        .map(|p| Ok(Bytes::copy_from_slice(p)))
        .collect();
    let up = Upload {
        content_type: Some(content_type.to_string()),
        body: futures_util::stream::iter(pieces),
        owner: "fuzz".into(),
        max_file_size: 1024,
    };
    u.runtime.block_on(async {
        if let Ok(meta) = upload(&u.files, up).await {
            assert!(meta.bytes <= 1024, "an upload passed the size limit");
            u.files
                .delete(&meta.id)
                .await
                .expect("the upload is deleted");
        }
    });
}

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = split(data);
    let Ok(header) = HeaderValue::from_bytes(content_type) else {
        return;
    };
    let body = Bytes::copy_from_slice(body);
    let read = multipart_model(&body, Some(&header));
    if let Some(rewritten) = multipart_replace_model(&body, Some(&header), "fuzz-model") {
        // What is sent upstream names the model that was routed to.
        assert_eq!(
            multipart_model(&rewritten, Some(&header)).ok().as_deref(),
            Some("fuzz-model"),
            "the rewritten form names another model (read before: {read:?})"
        );
    }
    if let Ok(ct) = header.to_str() {
        let _ = images::boundary(ct);
        upload_once(ct, &body);
    }
});
