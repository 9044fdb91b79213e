//! Files' metadata in the embedded database (`files.metadata_storage: persistent`).

use std::sync::Arc;

use redb::{ReadableTable, TableDefinition};

use super::{decode, Store, StoreError};
use crate::files::FileMeta;

/// id → JSON of a [`FileMeta`].
const FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("files");

impl Store {
    /// Commits a file's metadata.
    pub async fn put_file(self: &Arc<Self>, meta: FileMeta) -> Result<(), StoreError> {
        self.put_json(FILES, meta.id.clone(), &meta).await
    }

    /// A file's metadata.
    pub async fn get_file(self: &Arc<Self>, id: String) -> Result<Option<FileMeta>, StoreError> {
        self.get_json(FILES, id).await
    }

    /// Every file's metadata, oldest first.
    pub async fn list_files(self: &Arc<Self>) -> Result<Vec<FileMeta>, StoreError> {
        self.read(FILES, |t| {
            let mut all = Vec::new();
            for entry in t.iter().map_err(StoreError::io)? {
                let (_, v) = entry.map_err(StoreError::io)?;
                all.push(decode::<FileMeta>(v.value())?);
            }
            all.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
            Ok(all)
        })
        .await
    }

    /// Deletes a file's metadata; whether it was there.
    pub async fn delete_file(self: &Arc<Self>, id: String) -> Result<bool, StoreError> {
        self.delete_key(FILES, id).await
    }
}
