//! Stored Responses (OpenAI's Responses API with `store: true`): the response object, the
//! turn's input items and the link to the previous response, so `previous_response_id`
//! rebuilds a conversation for any backend, and `GET`/`DELETE /v1/responses/{id}` and
//! `/input_items` work after a restart.

use std::sync::Arc;

use redb::TableDefinition;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{decode, Store, StoreError};

/// id → JSON of a [`ResponseRecord`].
const RESPONSES: TableDefinition<&str, &[u8]> = TableDefinition::new("responses");

/// Longest chain of `previous_response_id` links followed (a guard against cycles).
const MAX_CHAIN: usize = 10_000;

/// One stored response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResponseRecord {
    /// Who may read it: the API key's `user_id`, else its id (empty without keys).
    pub owner: String,
    /// Unix seconds.
    pub created_at: u64,
    /// The response object as the client got it.
    pub response: Value,
    /// This turn's input, as items.
    pub input_items: Vec<Value>,
    /// The response it continued.
    pub previous: Option<String>,
    /// The backend that issued the id when the request was passed through to a backend
    /// that keeps its own state (OpenAI); `None` when the router made the response.
    pub backend: Option<String>,
}

impl ResponseRecord {
    /// The response's output items.
    pub fn output(&self) -> &[Value] {
        self.response["output"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
    }
}

impl Store {
    /// Stores (or replaces) a response.
    pub async fn put_response(
        self: &Arc<Self>,
        id: String,
        record: ResponseRecord,
    ) -> Result<(), StoreError> {
        self.put_json(RESPONSES, id, &record).await
    }

    /// The stored response `id`, if any.
    pub async fn get_response(
        self: &Arc<Self>,
        id: String,
    ) -> Result<Option<ResponseRecord>, StoreError> {
        self.get_json(RESPONSES, id).await
    }

    /// Deletes `id`; whether it was there.
    pub async fn delete_response(self: &Arc<Self>, id: String) -> Result<bool, StoreError> {
        self.delete_key(RESPONSES, id).await
    }

    /// The conversation up to and including `id`, oldest first: each turn's input items and
    /// then its output items, following `previous` links. `None` when `id` is not stored;
    /// a missing link further back ends the chain there (it expired).
    pub async fn conversation(
        self: &Arc<Self>,
        id: String,
    ) -> Result<Option<(ResponseRecord, Vec<Value>)>, StoreError> {
        self.read(RESPONSES, move |t| {
            let read = |id: &str| -> Result<Option<ResponseRecord>, StoreError> {
                let v = t.get(id).map_err(StoreError::io)?;
                v.map(|v| decode::<ResponseRecord>(v.value())).transpose()
            };
            let Some(last) = read(&id)? else {
                return Ok(None);
            };
            let mut turns = vec![last.clone()];
            let mut next = last.previous.clone();
            while let Some(prev) = next.take() {
                if turns.len() >= MAX_CHAIN {
                    break;
                }
                if let Some(r) = read(&prev)? {
                    next = r.previous.clone();
                    turns.push(r);
                }
            }
            let mut items = Vec::new();
            for turn in turns.iter().rev() {
                items.extend(turn.input_items.iter().cloned());
                items.extend(turn.output().iter().cloned());
            }
            Ok(Some((last, items)))
        })
        .await
    }

    /// Deletes responses created before `before` (Unix seconds); how many went.
    pub async fn sweep_responses(self: &Arc<Self>, before: u64) -> Result<usize, StoreError> {
        self.sweep(RESPONSES, move |v| {
            decode::<ResponseRecord>(v).map_or(true, |r| r.created_at < before)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(
        owner: &str,
        at: u64,
        previous: Option<&str>,
        said: &str,
        answered: &str,
    ) -> ResponseRecord {
        ResponseRecord {
            owner: owner.into(),
            created_at: at,
            response: json!({"output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": answered}]}]}),
            input_items: vec![json!({"role": "user", "content": said})],
            previous: previous.map(str::to_string),
            backend: None,
        }
    }

    #[tokio::test]
    async fn stores_chains_deletes_and_sweeps_across_reopens() {
        let dir = std::env::temp_dir().join(format!("continuum-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("nested/store.redb");
        let store = Arc::new(Store::new(&path));
        assert!(store.get_response("resp_x".into()).await.unwrap().is_none());
        assert!(!path.exists() || store.db.lock().unwrap().is_some());
        store
            .put_response("resp_1".into(), record("alice", 10, None, "hi", "hello"))
            .await
            .unwrap();
        store
            .put_response(
                "resp_2".into(),
                record("alice", 20, Some("resp_1"), "again", "sure"),
            )
            .await
            .unwrap();
        drop(store);

        let store = Arc::new(Store::new(&path));
        let (last, items) = store.conversation("resp_2".into()).await.unwrap().unwrap();
        assert_eq!(last.owner, "alice");
        let texts: Vec<String> = items
            .iter()
            .map(|i| {
                i["content"].as_str().map_or_else(
                    || i["content"][0]["text"].as_str().unwrap().to_string(),
                    str::to_string,
                )
            })
            .collect();
        assert_eq!(texts, ["hi", "hello", "again", "sure"]);
        assert_eq!(store.sweep_responses(15).await.unwrap(), 1);
        let (_, items) = store.conversation("resp_2".into()).await.unwrap().unwrap();
        assert_eq!(items.len(), 2, "an expired link ends the chain");
        assert!(store.delete_response("resp_2".into()).await.unwrap());
        assert!(!store.delete_response("resp_2".into()).await.unwrap());
        assert!(store.get_response("resp_2".into()).await.unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
