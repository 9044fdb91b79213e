//! The Files API's storage: blobs on disk under `files.storage_path` (named by id only —
//! a client's file name never becomes a path), metadata in the embedded database
//! (`persistent`) or in memory.
//!
//! Crash safety (`kill -9` at any moment loses no committed file, leaves no orphan or
//! corrupt entry): an upload is streamed to `<id>.tmp` and synced; then its metadata is
//! committed; then the temporary file is renamed to `<id>` and the directory synced. At
//! start, [`Files::reconcile`] finishes a rename that a crash interrupted after the commit,
//! drops metadata whose blob is gone, and deletes temporary files nobody committed — so a
//! file exists exactly when its metadata was committed. (This commits before the rename,
//! where a rename-then-commit order would leave an orphan blob after a crash between the
//! two.)

pub mod spool;
mod upload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::files::{FilesConfig, MetadataStorage};
use crate::error::ProxyError;
use crate::store::Store;

pub use upload::{upload, Upload};

/// The purpose of images the router hosts for `response_format: url` (not uploadable:
/// not among [`PURPOSES`]).
pub const HOSTED_IMAGE: &str = "image_hosting";

/// How long a hosted image's URL works.
pub const HOSTED_IMAGE_TTL: u64 = 3600;

/// The purposes OpenAI's Files API takes.
pub const PURPOSES: [&str; 6] = [
    "assistants",
    "batch",
    "fine-tune",
    "vision",
    "user_data",
    "evals",
];

/// One stored file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileMeta {
    /// `file-…`.
    pub id: String,
    /// Who uploaded it (the key's `user_id`, else its id; `""` without keys).
    pub owner: String,
    /// The name the client gave (a base name, checked).
    pub filename: String,
    /// Its purpose.
    pub purpose: String,
    /// Its size.
    pub bytes: u64,
    /// Unix seconds.
    pub created_at: u64,
    /// Nanoseconds past `created_at`: orders files made in the same second.
    #[serde(default)]
    pub created_ns: u32,
    /// Its media type (from the upload, else guessed from the name).
    pub mime: String,
}

impl FileMeta {
    /// Upload order.
    pub fn order_key(&self) -> (u64, u32, &str) {
        (self.created_at, self.created_ns, &self.id)
    }

    /// OpenAI's file object.
    pub fn object(&self, retention_days: u64) -> Value {
        let expires = (retention_days > 0).then(|| self.created_at + retention_days * 86_400);
        json!({
            "id": self.id, "object": "file", "bytes": self.bytes, "created_at": self.created_at,
            "expires_at": expires, "filename": self.filename, "purpose": self.purpose,
            "status": "processed", "status_details": null,
        })
    }
}

/// Where metadata lives.
enum Meta {
    Memory(Mutex<BTreeMap<String, FileMeta>>),
    Persistent(Arc<Store>),
}

/// The file store.
pub struct Files {
    dir: PathBuf,
    meta: Meta,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files").field("dir", &self.dir).finish()
    }
}

fn store_error(e: impl std::fmt::Display) -> ProxyError {
    ProxyError::Store(e.to_string())
}

/// A new file id.
pub fn new_id() -> String {
    format!("file-{:016x}{:08x}", fastrand::u64(..), fastrand::u32(..))
}

/// Whether `id` has the shape of an id this router issues (checked before any lookup, so
/// ids that are not ours never reach the disk or the database).
pub fn well_formed(id: &str) -> bool {
    id.len() == 29 && id.starts_with("file-") && id[5..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl Files {
    /// The store for `config` (metadata in `store` when persistent). Nothing is created
    /// until the first upload.
    pub fn new(config: &FilesConfig, store: &Arc<Store>) -> Files {
        Files {
            dir: config.storage_path.clone(),
            meta: match config.metadata_storage {
                MetadataStorage::Memory => Meta::Memory(Mutex::new(BTreeMap::new())),
                MetadataStorage::Persistent => Meta::Persistent(store.clone()),
            },
        }
    }

    /// Where blobs live.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn blob(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn temp(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.tmp"))
    }

    /// A file's metadata.
    pub async fn get(&self, id: &str) -> Result<Option<FileMeta>, ProxyError> {
        if !well_formed(id) {
            return Ok(None);
        }
        match &self.meta {
            Meta::Memory(m) => Ok(m.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned()),
            Meta::Persistent(s) => s.get_file(id.to_string()).await.map_err(store_error),
        }
    }

    /// Every file, oldest first.
    pub async fn list(&self) -> Result<Vec<FileMeta>, ProxyError> {
        match &self.meta {
            Meta::Memory(m) => {
                let mut all: Vec<FileMeta> = m
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .values()
                    .cloned()
                    .collect();
                all.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
                Ok(all)
            }
            Meta::Persistent(s) => {
                if !s.path().exists() {
                    return Ok(Vec::new());
                }
                s.list_files().await.map_err(store_error)
            }
        }
    }

    /// Commits a synced upload (`<id>.tmp`): metadata first, then the rename.
    async fn commit(&self, meta: FileMeta) -> Result<(), ProxyError> {
        let id = meta.id.clone();
        match &self.meta {
            Meta::Memory(m) => {
                self.finish_rename(&id).await?;
                m.lock().unwrap_or_else(|p| p.into_inner()).insert(id, meta);
                return Ok(());
            }
            Meta::Persistent(s) => s.put_file(meta).await.map_err(store_error)?,
        }
        self.finish_rename(&id).await
    }

    async fn finish_rename(&self, id: &str) -> Result<(), ProxyError> {
        tokio::fs::rename(self.temp(id), self.blob(id))
            .await
            .map_err(|e| store_error(format!("storing the upload failed: {e}")))?;
        sync_dir(&self.dir).await;
        Ok(())
    }

    /// Stores `bytes` as a new file (the same temp → sync → commit → rename steps as an
    /// upload).
    pub async fn put(
        &self,
        owner: &str,
        filename: &str,
        mime: &str,
        purpose: &str,
        bytes: &[u8],
    ) -> Result<FileMeta, ProxyError> {
        use tokio::io::AsyncWriteExt;
        let storage = |e: std::io::Error| {
            store_error(format!("{} cannot be written: {e}", self.dir.display()))
        };
        let id = new_id();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(storage)?;
        let mut file = tokio::fs::File::create(self.temp(&id))
            .await
            .map_err(storage)?;
        let written = async {
            file.write_all(bytes).await?;
            file.sync_all().await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(self.temp(&id)).await;
            return Err(storage(e));
        }
        let meta = FileMeta {
            id: id.clone(),
            owner: owner.to_string(),
            filename: filename.to_string(),
            purpose: purpose.to_string(),
            bytes: bytes.len() as u64,
            created_at: now.as_secs(),
            created_ns: now.subsec_nanos(),
            mime: mime.to_string(),
        };
        if let Err(e) = self.commit(meta.clone()).await {
            let _ = tokio::fs::remove_file(self.temp(&id)).await;
            return Err(e);
        }
        Ok(meta)
    }

    /// Deletes a file (metadata first: a crash in between leaves a blob nobody refers to,
    /// removed at the next start).
    pub async fn delete(&self, id: &str) -> Result<bool, ProxyError> {
        let removed = match &self.meta {
            Meta::Memory(m) => m
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id)
                .is_some(),
            Meta::Persistent(s) => s.delete_file(id.to_string()).await.map_err(store_error)?,
        };
        if removed {
            let _ = tokio::fs::remove_file(self.blob(id)).await;
        }
        Ok(removed)
    }

    /// Opens a file's blob for reading.
    pub async fn open(&self, meta: &FileMeta) -> Result<tokio::fs::File, ProxyError> {
        tokio::fs::File::open(self.blob(&meta.id))
            .await
            .map_err(|e| store_error(format!("the content of {} cannot be read: {e}", meta.id)))
    }

    /// A file's whole content (for resolving references in chat; bounded by the caller).
    pub async fn read(&self, meta: &FileMeta) -> Result<bytes::Bytes, ProxyError> {
        tokio::fs::read(self.blob(&meta.id))
            .await
            .map(bytes::Bytes::from)
            .map_err(|e| store_error(format!("the content of {} cannot be read: {e}", meta.id)))
    }

    /// Brings blobs and metadata in line at start (see the module docs); with
    /// `cleanup_orphans`, blobs nobody refers to are deleted too. Returns what was done.
    pub async fn reconcile(&self, cleanup_orphans: bool) -> Result<Reconciled, ProxyError> {
        let mut done = Reconciled::default();
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(done),
            Err(e) => return Err(store_error(format!("{}: {e}", self.dir.display()))),
        };
        let mut blobs = Vec::new();
        let mut temps = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(store_error)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if spool::is_spool(&name) {
                // An upload in passing when the router stopped.
                let _ = tokio::fs::remove_file(entry.path()).await;
                continue;
            }
            match name.strip_suffix(".tmp") {
                Some(id) if well_formed(id) => temps.push(id.to_string()),
                None if well_formed(&name) => blobs.push(name),
                _ => {}
            }
        }
        let metas = self.list().await?;
        for meta in &metas {
            if blobs.contains(&meta.id) {
                continue;
            }
            if temps.contains(&meta.id) {
                self.finish_rename(&meta.id).await?;
                temps.retain(|t| t != &meta.id);
                done.completed += 1;
            } else {
                self.delete(&meta.id).await?;
                done.dropped += 1;
            }
        }
        for id in temps {
            let _ = tokio::fs::remove_file(self.temp(&id)).await;
            done.partial += 1;
        }
        if cleanup_orphans {
            for id in blobs.iter().filter(|b| !metas.iter().any(|m| &&m.id == b)) {
                let _ = tokio::fs::remove_file(self.blob(id)).await;
                done.orphans += 1;
            }
        }
        Ok(done)
    }

    /// Deletes files created before `before` (Unix seconds; `None`: keep uploads), and
    /// hosted images past their time; how many went.
    pub async fn sweep(&self, before: Option<u64>, now: u64) -> Result<usize, ProxyError> {
        let mut n = 0;
        for meta in self.list().await? {
            let hosted_expired =
                meta.purpose == HOSTED_IMAGE && meta.created_at + HOSTED_IMAGE_TTL < now;
            let old = before.is_some_and(|b| meta.created_at < b);
            if (hosted_expired || old) && self.delete(&meta.id).await? {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// What [`Files::reconcile`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Committed uploads whose rename a crash interrupted, finished.
    pub completed: usize,
    /// Metadata whose blob was gone, dropped.
    pub dropped: usize,
    /// Uncommitted temporary files, deleted.
    pub partial: usize,
    /// Blobs without metadata, deleted (`cleanup_orphans_on_startup`).
    pub orphans: usize,
}

/// Syncs a directory so a rename in it survives a crash.
async fn sync_dir(dir: &Path) {
    let dir = dir.to_path_buf();
    let _ =
        tokio::task::spawn_blocking(move || std::fs::File::open(&dir).and_then(|d| d.sync_all()))
            .await;
}

/// A file's content as 64 KB frames read as they are sent (downloads, spooled uploads);
/// a read error ends the stream with it.
pub fn frames(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<http_body::Frame<bytes::Bytes>>> + Send {
    use tokio::io::AsyncReadExt;
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 64 << 10];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((
                    Ok(http_body::Frame::data(bytes::Bytes::from(buf))),
                    Some(file),
                ))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// A media type for a file name, when the upload named none.
pub fn guess_mime(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map_or("", |(_, e)| e)
        .to_ascii_lowercase();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "md" | "markdown" => "text/markdown",
        "csv" => "text/csv",
        "json" => "application/json",
        "jsonl" => "application/jsonl",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "html" | "htm" => "text/html",
        "rs" | "py" | "js" | "ts" | "go" | "c" | "h" | "cpp" | "java" | "rb" | "sh" | "toml"
        | "yaml" | "yml" | "xml" | "sql" => "text/plain",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_mimes() {
        let id = new_id();
        assert!(well_formed(&id), "{id}");
        assert!(!well_formed("file-../../etc/passwd"));
        assert!(!well_formed("file-abc"));
        assert!(!well_formed(&format!("{id}x")));
        assert_eq!(guess_mime("a.PDF"), "application/pdf");
        assert_eq!(guess_mime("noext"), "application/octet-stream");
    }
}
