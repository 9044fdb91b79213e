//! `POST /v1/files`: a multipart upload (`file`, `purpose`) streamed to disk — never held
//! whole in memory — with the size limit enforced as the bytes arrive (413 the moment it
//! is passed, the partial file removed) and every field checked.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::Stream;
use tokio::io::AsyncWriteExt;

use super::{guess_mime, new_id, FileMeta, Files, PURPOSES};
use crate::error::ProxyError;

/// Most bytes multipart framing (part headers, boundaries) may hold back at once: a part
/// header larger than this is refused instead of being buffered.
const MAX_PENDING: u64 = 1 << 20;

/// Longest file name kept.
const MAX_FILENAME: usize = 512;

/// What a request to upload carries.
pub struct Upload<S> {
    /// The request's `Content-Type` (with the boundary).
    pub content_type: Option<String>,
    /// The body, as it arrives.
    pub body: S,
    /// The uploader.
    pub owner: String,
    /// Largest file accepted.
    pub max_file_size: u64,
}

fn invalid(param: &'static str, message: impl Into<String>) -> ProxyError {
    ProxyError::InvalidField {
        param,
        message: message.into(),
    }
}

/// The request body, counting what goes into the multipart parser against what comes out
/// as field data: a gap over [`MAX_PENDING`] is a part header too large.
struct Counted<S> {
    inner: S,
    fed: Arc<AtomicU64>,
    out: Arc<AtomicU64>,
}

/// The client's body failed mid-upload; the cause is kept, so a `body_read_timeout` is
/// still known as one (408) behind the multipart parser.
#[derive(Debug, thiserror::Error)]
#[error("the upload broke off: {0}")]
struct BrokeOff(#[source] Box<dyn std::error::Error + Send + Sync>);

impl<S, E> Stream for Counted<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let fed = self.fed.load(Ordering::Relaxed);
        if fed.saturating_sub(self.out.load(Ordering::Relaxed)) > MAX_PENDING {
            return Poll::Ready(Some(Err(std::io::Error::other(
                "a multipart part header is larger than 1MB",
            ))));
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                self.fed.fetch_add(b.len() as u64, Ordering::Relaxed);
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => {
                Poll::Ready(Some(Err(std::io::Error::other(BrokeOff(Box::new(e))))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A checked base name: path components dropped, NUL and oversized names refused.
fn clean_filename(raw: &str) -> Result<String, ProxyError> {
    if raw.contains('\0') {
        return Err(invalid("file", "the file name contains a NUL character"));
    }
    if raw.len() > MAX_FILENAME {
        return Err(invalid(
            "file",
            format!(
                "the file name is {} bytes long; at most {MAX_FILENAME} are allowed",
                raw.len()
            ),
        ));
    }
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("").trim();
    if base.is_empty() || base == "." || base == ".." || base.chars().any(char::is_control) {
        return Err(invalid(
            "file",
            format!("'{}' is not a usable file name", raw.escape_debug()),
        ));
    }
    Ok(base.to_string())
}

fn multipart_error(e: multer::Error) -> ProxyError {
    if let multer::Error::StreamReadFailed(source) = &e {
        if let broke @ ProxyError::BodyTimeout { .. } = ProxyError::from_body_error(&**source) {
            return broke;
        }
    }
    let detail = match &e {
        // Our own stream's reason (a part header too large, a body that broke off).
        multer::Error::StreamReadFailed(source) => format!("{e}: {source}"),
        _ => e.to_string(),
    };
    invalid("file", format!("the multipart body is malformed: {detail}"))
}

/// Streams an upload into `files` and commits it; the file's metadata on success.
pub async fn upload<S, E>(files: &Files, up: Upload<S>) -> Result<FileMeta, ProxyError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    let content_type = up.content_type.ok_or_else(|| {
        invalid(
            "file",
            "the request must be multipart/form-data (no Content-Type)",
        )
    })?;
    let boundary = multer::parse_boundary(&content_type).map_err(|_| {
        invalid(
            "file",
            format!("the Content-Type must be multipart/form-data with a boundary, not '{content_type}'"),
        )
    })?;
    let (fed, out) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let body = Counted {
        inner: up.body,
        fed: fed.clone(),
        out: out.clone(),
    };
    let mut multipart = multer::Multipart::new(body, boundary);
    let id = new_id();
    let mut purpose: Option<String> = None;
    let mut stored: Option<(String, String, u64)> = None;
    let result = async {
        while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
            match field.name() {
                Some("purpose") => {
                    let mut text = Vec::new();
                    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                        out.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        text.extend_from_slice(&chunk);
                        if text.len() > 64 {
                            return Err(invalid("purpose", "purpose is too long"));
                        }
                    }
                    purpose = Some(String::from_utf8_lossy(&text).trim().to_string());
                }
                Some("file") if stored.is_none() => {
                    let filename = clean_filename(field.file_name().unwrap_or(""))?;
                    let mime = field
                        .content_type()
                        .map(|m| m.essence_str().to_string())
                        .filter(|m| m != "application/octet-stream")
                        .unwrap_or_else(|| guess_mime(&filename).to_string());
                    let size = write_temp(files, &id, &mut field, &out, up.max_file_size).await?;
                    stored = Some((filename, mime, size));
                }
                Some("file") => {
                    return Err(invalid("file", "only one file may be uploaded at a time"))
                }
                _ => {
                    // Other fields are read and ignored, within the same bounds.
                    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                        out.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    }
                }
            }
        }
        let (filename, mime, bytes) = stored
            .take()
            .ok_or_else(|| invalid("file", "the upload has no 'file' part"))?;
        let purpose = purpose
            .take()
            .ok_or_else(|| invalid("purpose", "'purpose' is required"))?;
        if !PURPOSES.contains(&purpose.as_str()) {
            return Err(invalid(
                "purpose",
                format!("'{purpose}' is not a purpose ({})", PURPOSES.join(", ")),
            ));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Ok(FileMeta {
            id: id.clone(),
            owner: up.owner.clone(),
            filename,
            purpose,
            bytes,
            created_at: now.as_secs(),
            created_ns: now.subsec_nanos(),
            mime,
        })
    }
    .await;
    match result {
        Ok(meta) => match files.commit(meta.clone()).await {
            Ok(()) => Ok(meta),
            Err(e) => {
                let _ = tokio::fs::remove_file(files.temp(&id)).await;
                Err(e)
            }
        },
        Err(e) => {
            let _ = tokio::fs::remove_file(files.temp(&id)).await;
            Err(e)
        }
    }
}

/// Streams a `file` field into `<id>.tmp` and syncs it; its size.
async fn write_temp(
    files: &Files,
    id: &str,
    field: &mut multer::Field<'_>,
    out: &AtomicU64,
    limit: u64,
) -> Result<u64, ProxyError> {
    let storage = |e: std::io::Error| {
        let full = matches!(e.raw_os_error(), Some(28) | Some(122));
        ProxyError::Store(if full {
            format!(
                "no space left to store the upload under {}",
                files.dir.display()
            )
        } else {
            format!(
                "the upload cannot be stored under {}: {e}",
                files.dir.display()
            )
        })
    };
    tokio::fs::create_dir_all(&files.dir)
        .await
        .map_err(storage)?;
    let mut file = tokio::fs::File::create(files.temp(id))
        .await
        .map_err(storage)?;
    let mut size = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        out.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        size += chunk.len() as u64;
        if size > limit {
            return Err(ProxyError::FileTooLarge { limit });
        }
        file.write_all(&chunk).await.map_err(storage)?;
    }
    file.flush().await.map_err(storage)?;
    file.sync_all().await.map_err(storage)?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_base_names() {
        assert_eq!(clean_filename("report.pdf").unwrap(), "report.pdf");
        assert_eq!(clean_filename("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(clean_filename("C:\\Users\\x\\a.txt").unwrap(), "a.txt");
        assert!(clean_filename("..").is_err());
        assert!(clean_filename("dir/").is_err());
        assert!(clean_filename("a\0b").is_err());
        assert!(clean_filename(&"x".repeat(10_000)).is_err());
        assert!(clean_filename("").is_err());
    }
}
