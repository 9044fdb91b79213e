//! Uploads passed on to a backend (image edits and variations) without being held in
//! memory: the request body is written to a spool file as it arrives (its first bytes kept
//! in memory too, for the form fields routing reads), then streamed from disk to each
//! backend tried — so retries and fallbacks work as for any request. The file goes when
//! the last attempt is done.

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http_body::Frame;
use http_body_util::{BodyExt, Either, StreamBody};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::backend::UpstreamBody;
use crate::error::ProxyError;

/// How many leading bytes of an upload are kept in memory.
pub const HEAD: usize = 256 << 10;

/// An upload on disk.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    /// Its whole length.
    pub len: u64,
    /// Its first [`HEAD`] bytes (all of it when shorter).
    pub head: Bytes,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether a file name in the storage directory is a spool file (removed at start).
pub fn is_spool(name: &str) -> bool {
    name.starts_with("spool-") && name.ends_with(".part")
}

/// Writes `body` to a new spool file under `dir`, refusing more than `limit` bytes (413
/// as soon as it is passed, nothing left behind).
pub async fn spool<S, E>(dir: &Path, mut body: S, limit: u64) -> Result<Spool, ProxyError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let storage = |e: std::io::Error| {
        ProxyError::Store(format!(
            "the upload cannot be stored under {}: {e}",
            dir.display()
        ))
    };
    tokio::fs::create_dir_all(dir).await.map_err(storage)?;
    let path = dir.join(format!(
        "spool-{:016x}{:016x}.part",
        fastrand::u64(..),
        fastrand::u64(..)
    ));
    let mut file = tokio::fs::File::create(&path).await.map_err(storage)?;
    // From here on the file is removed with the Spool, whatever happens.
    let mut spool = Spool {
        path,
        len: 0,
        head: Bytes::new(),
    };
    let mut head = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ProxyError::BodyRead(e.to_string()))?;
        spool.len += chunk.len() as u64;
        if spool.len > limit {
            return Err(ProxyError::BodyTooLarge { limit });
        }
        if head.len() < HEAD {
            let take = chunk.len().min(HEAD - head.len());
            head.extend_from_slice(&chunk[..take]);
        }
        file.write_all(&chunk).await.map_err(storage)?;
    }
    file.flush().await.map_err(storage)?;
    spool.head = head.freeze();
    Ok(spool)
}

impl Spool {
    /// The upload as a body streamed from disk, its head replaced by `head` (the same
    /// bytes, or with the model form field rewritten).
    pub fn body(&self, head: Bytes) -> UpstreamBody {
        let path = self.path.clone();
        let skip = self.head.len() as u64;
        let first =
            futures_util::stream::once(async move { Ok::<_, std::io::Error>(Frame::data(head)) });
        let rest = futures_util::stream::once(async move {
            let mut file = tokio::fs::File::open(&path).await?;
            file.seek(std::io::SeekFrom::Start(skip)).await?;
            Ok::<_, std::io::Error>(file)
        })
        .flat_map(|opened| match opened {
            Ok(file) => super::frames(file).left_stream(),
            Err(e) => futures_util::stream::once(async move { Err(e) }).right_stream(),
        });
        Either::Right(BodyExt::boxed(StreamBody::new(first.chain(rest))))
    }
}
