//! Files' metadata in the embedded database (`files.metadata_storage: persistent`).

use std::sync::Arc;

use redb::{ReadableTable, TableDefinition};

use super::{Store, StoreError};
use crate::files::FileMeta;

/// id → JSON of a [`FileMeta`].
const FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("files");

fn decode(bytes: &[u8]) -> Result<FileMeta, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Io(format!("a file's metadata is unreadable: {e}")))
}

impl Store {
    /// Commits a file's metadata.
    pub async fn put_file(self: &Arc<Self>, meta: FileMeta) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(&meta).map_err(StoreError::io)?;
        self.run(move |db| {
            let tx = db.begin_write().map_err(StoreError::io)?;
            {
                let mut t = tx.open_table(FILES).map_err(StoreError::io)?;
                t.insert(meta.id.as_str(), bytes.as_slice())
                    .map_err(StoreError::io)?;
            }
            tx.commit().map_err(StoreError::io)
        })
        .await
    }

    /// A file's metadata.
    pub async fn get_file(self: &Arc<Self>, id: String) -> Result<Option<FileMeta>, StoreError> {
        self.run(move |db| {
            let tx = db.begin_read().map_err(StoreError::io)?;
            let t = match tx.open_table(FILES) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(StoreError::io(e)),
            };
            let found = t.get(id.as_str()).map_err(StoreError::io)?;
            found.map(|v| decode(v.value())).transpose()
        })
        .await
    }

    /// Every file's metadata, oldest first.
    pub async fn list_files(self: &Arc<Self>) -> Result<Vec<FileMeta>, StoreError> {
        self.run(move |db| {
            let tx = db.begin_read().map_err(StoreError::io)?;
            let t = match tx.open_table(FILES) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(StoreError::io(e)),
            };
            let mut all = Vec::new();
            for entry in t.iter().map_err(StoreError::io)? {
                let (_, v) = entry.map_err(StoreError::io)?;
                all.push(decode(v.value())?);
            }
            all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            Ok(all)
        })
        .await
    }

    /// Deletes a file's metadata; whether it was there.
    pub async fn delete_file(self: &Arc<Self>, id: String) -> Result<bool, StoreError> {
        self.run(move |db| {
            let tx = db.begin_write().map_err(StoreError::io)?;
            let removed = {
                let mut t = tx.open_table(FILES).map_err(StoreError::io)?;
                let removed = t.remove(id.as_str()).map_err(StoreError::io)?;
                removed.is_some()
            };
            tx.commit().map_err(StoreError::io)?;
            Ok(removed)
        })
        .await
    }
}
