//! Agent-mode sessions in the embedded database (`acp.sessions.storage: persistent`), so
//! `session/load` works across restarts.

use std::sync::Arc;

use redb::TableDefinition;
use serde_json::Value;

use super::{Store, StoreError};

/// session id → JSON of the session's state.
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("acp_sessions");

impl Store {
    /// Commits a session's state.
    pub async fn put_session(
        self: &Arc<Self>,
        id: String,
        state: &Value,
    ) -> Result<(), StoreError> {
        self.put_json(SESSIONS, id, state).await
    }

    /// A session's state.
    pub async fn get_session(self: &Arc<Self>, id: String) -> Result<Option<Value>, StoreError> {
        self.get_json(SESSIONS, id).await
    }

    /// Deletes sessions last used before `before` (Unix seconds, their `updated`); how
    /// many went.
    pub async fn sweep_sessions(self: &Arc<Self>, before: u64) -> Result<usize, StoreError> {
        self.sweep(SESSIONS, move |v| {
            super::decode::<Value>(v).map_or(true, |s| s["updated"].as_u64().unwrap_or(0) < before)
        })
        .await
    }

    /// Deletes a session; whether it was there.
    pub async fn delete_session(self: &Arc<Self>, id: String) -> Result<bool, StoreError> {
        self.delete_key(SESSIONS, id).await
    }
}
