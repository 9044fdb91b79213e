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

    /// Deletes a session; whether it was there.
    pub async fn delete_session(self: &Arc<Self>, id: String) -> Result<bool, StoreError> {
        self.delete_key(SESSIONS, id).await
    }
}
