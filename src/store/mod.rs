//! The router's embedded database: a redb file (ACID transactions, crash-safe commits, no
//! server) holding stored Responses — and, as they land, files' metadata and agent
//! sessions. It is opened on first use, so a router that never stores anything writes no
//! file, and it survives restarts, reloads and `kill -9`.
//!
//! redb calls block, so every operation here is run on tokio's blocking pool.

mod files;
mod responses;
mod sessions;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use responses::ResponseRecord;

/// A table of JSON values by string key.
type Table = redb::TableDefinition<'static, &'static str, &'static [u8]>;

/// A stored JSON value.
fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Io(format!("a stored record is unreadable: {e}")))
}

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("the store at {path} could not be opened: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A read or write failed.
    #[error("the store failed: {0}")]
    Io(String),
}

impl StoreError {
    fn io(e: impl std::fmt::Display) -> StoreError {
        StoreError::Io(e.to_string())
    }
}

/// The database, opened on first use and shared by every worker.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    db: Mutex<Option<Arc<redb::Database>>>,
}

impl Store {
    /// A store at `path` (nothing is opened or created yet).
    pub fn new(path: &Path) -> Store {
        Store {
            path: path.to_path_buf(),
            db: Mutex::new(None),
        }
    }

    /// Where it lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open database, opening (and creating) it on first use.
    fn db(&self) -> Result<Arc<redb::Database>, StoreError> {
        let mut slot = self.db.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(db) = slot.as_ref() {
            return Ok(db.clone());
        }
        let open_error = |reason: String| StoreError::Open {
            path: self.path.clone(),
            reason,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_error(e.to_string()))?;
        }
        let db = redb::Database::create(&self.path).map_err(|e| open_error(e.to_string()))?;
        let db = Arc::new(db);
        *slot = Some(db.clone());
        Ok(db)
    }

    /// Writes `value` (as JSON) under `key` in `table`, in one committed transaction.
    async fn put_json<T: serde::Serialize>(
        self: &Arc<Self>,
        table: Table,
        key: String,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(StoreError::io)?;
        self.run(move |db| {
            let tx = db.begin_write().map_err(StoreError::io)?;
            {
                let mut t = tx.open_table(table).map_err(StoreError::io)?;
                t.insert(key.as_str(), bytes.as_slice())
                    .map_err(StoreError::io)?;
            }
            tx.commit().map_err(StoreError::io)
        })
        .await
    }

    /// The JSON value under `key` in `table`, if any.
    async fn get_json<T: serde::de::DeserializeOwned + Send + 'static>(
        self: &Arc<Self>,
        table: Table,
        key: String,
    ) -> Result<Option<T>, StoreError> {
        self.read(table, move |t| {
            let found = t.get(key.as_str()).map_err(StoreError::io)?;
            found.map(|v| decode(v.value())).transpose()
        })
        .await
    }

    /// Deletes `key` from `table`; whether it was there.
    async fn delete_key(self: &Arc<Self>, table: Table, key: String) -> Result<bool, StoreError> {
        self.run(move |db| {
            let tx = db.begin_write().map_err(StoreError::io)?;
            let removed = {
                let mut t = tx.open_table(table).map_err(StoreError::io)?;
                let removed = t.remove(key.as_str()).map_err(StoreError::io)?;
                removed.is_some()
            };
            tx.commit().map_err(StoreError::io)?;
            Ok(removed)
        })
        .await
    }

    /// Deletes every record of `table` that `expired` says is; how many went.
    async fn sweep<F>(self: &Arc<Self>, table: Table, expired: F) -> Result<usize, StoreError>
    where
        F: Fn(&[u8]) -> bool + Send + 'static,
    {
        use redb::ReadableTable;
        self.run(move |db| {
            let tx = db.begin_write().map_err(StoreError::io)?;
            let n = {
                let mut t = tx.open_table(table).map_err(StoreError::io)?;
                let mut old = Vec::new();
                for entry in t.iter().map_err(StoreError::io)? {
                    let (k, v) = entry.map_err(StoreError::io)?;
                    if expired(v.value()) {
                        old.push(k.value().to_string());
                    }
                }
                for k in &old {
                    t.remove(k.as_str()).map_err(StoreError::io)?;
                }
                old.len()
            };
            tx.commit().map_err(StoreError::io)?;
            Ok(n)
        })
        .await
    }

    /// Runs `f` over `table` in a read transaction (a table never written reads as
    /// empty: `f` gets `None`).
    async fn read<T, F>(self: &Arc<Self>, table: Table, f: F) -> Result<T, StoreError>
    where
        T: Default + Send + 'static,
        F: FnOnce(&redb::ReadOnlyTable<&'static str, &'static [u8]>) -> Result<T, StoreError>
            + Send
            + 'static,
    {
        self.run(move |db| {
            let tx = db.begin_read().map_err(StoreError::io)?;
            match tx.open_table(table) {
                Ok(t) => f(&t),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(T::default()),
                Err(e) => Err(StoreError::io(e)),
            }
        })
        .await
    }

    /// Runs `f` with the database on the blocking pool.
    async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&redb::Database) -> Result<T, StoreError> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&*this.db()?))
            .await
            .map_err(|e| StoreError::Io(format!("store task failed: {e}")))?
    }
}
