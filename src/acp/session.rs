//! Sessions: a conversation with its model, mode, working directory, MCP servers and the
//! "always" permission answers; held open up to `acp.sessions.max_concurrent`, closed
//! after `idle_timeout`, and kept in memory or in the embedded database.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use super::mcp::McpConnection;
use super::rpc::{code, RpcError};
use crate::config::acp::{SessionStorage, SessionsConfig};
use crate::store::Store;

/// The session modes offered.
pub const MODES: &[(&str, &str, &str)] = &[
    (
        "default",
        "Default",
        "Tool calls run or ask as acp.permissions says",
    ),
    (
        "accept_edits",
        "Accept edits",
        "File edits run without asking; the rest as acp.permissions says",
    ),
    (
        "read_only",
        "Read only",
        "Only read, search, think and fetch tool calls run; the model is told the rest were refused",
    ),
];

/// What a session remembers (and stores).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionState {
    /// The working directory.
    pub cwd: PathBuf,
    /// The model it talks to.
    pub model: String,
    /// Its mode (one of [`MODES`]).
    pub mode: String,
    /// The conversation, as OpenAI chat messages.
    pub history: Vec<Value>,
    /// Each tool call's title, kind and final status, by call id (for replays).
    #[serde(default)]
    pub tool_calls: HashMap<String, ToolRecord>,
    /// "Always allow" (`true`) or "always reject" answers, by tool name.
    #[serde(default)]
    pub always: HashMap<String, bool>,
    /// When it was last used (seconds since the epoch).
    pub updated: u64,
}

/// A tool call as shown to the user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolRecord {
    /// Its title.
    pub title: String,
    /// Its ACP kind.
    pub kind: String,
    /// `completed` or `failed`.
    pub status: String,
}

/// An open session.
pub struct Session {
    /// Its id.
    pub id: String,
    /// Its state; held for a whole prompt turn (one turn at a time).
    pub state: tokio::sync::Mutex<SessionState>,
    /// Its MCP servers (connected when it was opened).
    pub mcp: Vec<McpConnection>,
    /// Set while a prompt turn runs: sending `true` cancels it.
    cancel: Mutex<Option<watch::Sender<bool>>>,
    last_used: Mutex<Instant>,
}

impl Session {
    /// A session opened now.
    pub fn new(id: String, state: SessionState, mcp: Vec<McpConnection>) -> Session {
        Session {
            id,
            state: tokio::sync::Mutex::new(state),
            mcp,
            cancel: Mutex::new(None),
            last_used: Mutex::new(Instant::now()),
        }
    }

    /// Reserves the session's next prompt turn: the receiver that says when it is
    /// cancelled; an error while another turn runs (one at a time).
    pub fn reserve_turn(&self) -> Result<watch::Receiver<bool>, RpcError> {
        let mut slot = self.cancel.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_some() {
            return Err(RpcError::internal(
                "a prompt is already running in this session; cancel it or wait for its answer",
            ));
        }
        let (tx, rx) = watch::channel(false);
        *slot = Some(tx);
        drop(slot);
        self.touch();
        Ok(rx)
    }

    /// Ends the turn (a later cancel is a no-op).
    pub fn end_turn(&self) {
        *self.cancel.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.touch();
    }

    /// Cancels the running turn, if any.
    pub fn cancel(&self) {
        if let Some(tx) = self
            .cancel
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let _ = tx.send(true);
        }
    }

    fn busy(&self) -> bool {
        self.cancel
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The open sessions, and where they are kept.
pub struct Sessions {
    open: Mutex<HashMap<String, Arc<Session>>>,
    config: SessionsConfig,
    store: Option<Arc<Store>>,
}

impl Sessions {
    /// The registry for `config`, storing in `store` when `storage: persistent`.
    pub fn new(config: SessionsConfig, store: Arc<Store>) -> Sessions {
        let store = (config.storage == SessionStorage::Persistent).then_some(store);
        Sessions {
            open: Mutex::default(),
            config,
            store,
        }
    }

    /// An open session, or `-32002` naming the id.
    pub fn get(&self, id: &str) -> Result<Arc<Session>, RpcError> {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(id).cloned().ok_or_else(|| {
            RpcError::new(
                code::RESOURCE_NOT_FOUND,
                format!("no session '{id}' is open (create one with session/new, or load it with session/load)"),
            )
        })
    }

    /// Opens `session`, closing the least recently used idle session when
    /// `max_concurrent` are open; an error when every open session is busy.
    pub fn open(&self, session: Arc<Session>) -> Result<(), RpcError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.remove(&session.id);
        while open.len() >= self.config.max_concurrent {
            let oldest = open
                .values()
                .filter(|s| !s.busy())
                .max_by_key(|s| s.idle_for())
                .map(|s| s.id.clone());
            let Some(oldest) = oldest else {
                return Err(RpcError::internal(format!(
                    "{} sessions are busy (acp.sessions.max_concurrent); wait for one to finish or raise the limit",
                    open.len()
                )));
            };
            tracing::info!(session = %oldest, "session closed to make room (acp.sessions.max_concurrent)");
            open.remove(&oldest);
        }
        open.insert(session.id.clone(), session);
        Ok(())
    }

    /// Closes sessions idle longer than `idle_timeout`, and deletes stored sessions not
    /// used for that long.
    pub async fn expire(&self) {
        let expired: Vec<String> = {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            let ids: Vec<String> = open
                .values()
                .filter(|s| !s.busy() && s.idle_for() >= self.config.idle_timeout)
                .map(|s| s.id.clone())
                .collect();
            for id in &ids {
                open.remove(id);
            }
            ids
        };
        for id in &expired {
            tracing::info!(session = %id, "session closed after acp.sessions.idle_timeout");
        }
        // Stored sessions expire too, open or not (closed to make room, or never loaded).
        if let Some(store) = &self.store {
            let before = now_secs().saturating_sub(self.config.idle_timeout.as_secs());
            if let Err(e) = store.sweep_sessions(before).await {
                tracing::warn!("expired sessions could not be deleted: {e}");
            }
        }
    }

    /// Keeps a session's state (in the database with `storage: persistent`; in memory
    /// it is already kept by the open session).
    pub async fn save(&self, id: &str, state: &SessionState) {
        let Some(store) = &self.store else {
            return;
        };
        let value = serde_json::to_value(state).unwrap_or(Value::Null);
        if let Err(e) = store.put_session(id.to_string(), &value).await {
            tracing::warn!(session = %id, "the session could not be stored: {e}");
        }
    }

    /// The state of a session to load: the open one's, else the stored one's (if it has
    /// not been idle past `idle_timeout`); `-32002` when there is none.
    pub async fn find(&self, id: &str) -> Result<SessionState, RpcError> {
        if let Ok(open) = self.get(id) {
            return Ok(open.state.lock().await.clone());
        }
        let missing = || {
            let why = match self.store {
                Some(_) => "it expired, or was never created",
                None => "sessions are kept in memory (acp.sessions.storage: memory), so they end with the process",
            };
            RpcError::new(
                code::RESOURCE_NOT_FOUND,
                format!("no session '{id}' to load: {why}"),
            )
        };
        let Some(store) = &self.store else {
            return Err(missing());
        };
        let stored = store
            .get_session(id.to_string())
            .await
            .map_err(|e| RpcError::internal(e.to_string()))?;
        let Some(state) = stored.and_then(|v| serde_json::from_value::<SessionState>(v).ok())
        else {
            return Err(missing());
        };
        if now_secs().saturating_sub(state.updated) > self.config.idle_timeout.as_secs() {
            let _ = store.delete_session(id.to_string()).await;
            return Err(missing());
        }
        Ok(state)
    }

    /// Cancels every running turn (the client has gone).
    pub fn cancel_all(&self) {
        for s in self.open.lock().unwrap_or_else(|p| p.into_inner()).values() {
            s.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(model: &str) -> SessionState {
        SessionState {
            cwd: PathBuf::from("/w"),
            model: model.into(),
            mode: "default".into(),
            history: vec![serde_json::json!({"role": "user", "content": "hi"})],
            tool_calls: HashMap::new(),
            always: HashMap::new(),
            updated: now_secs(),
        }
    }

    fn session(id: &str, idle: Duration) -> Arc<Session> {
        let s = Session::new(id.into(), state("m"), Vec::new());
        *s.last_used.lock().unwrap() = Instant::now() - idle;
        Arc::new(s)
    }

    fn registry(max: usize, storage: SessionStorage, dir: &str) -> Sessions {
        let path = std::env::temp_dir().join(format!("continuum-acp-{dir}-{}", fastrand::u64(..)));
        let config = SessionsConfig {
            max_concurrent: max,
            idle_timeout: Duration::from_secs(60),
            storage,
        };
        Sessions::new(config, Arc::new(Store::new(&path.join("db.redb"))))
    }

    #[test]
    fn the_least_recently_used_idle_session_makes_room_and_busy_ones_never_do() {
        let r = registry(2, SessionStorage::Memory, "lru");
        r.open(session("old", Duration::from_secs(30))).unwrap();
        r.open(session("new", Duration::from_secs(1))).unwrap();
        r.open(session("third", Duration::ZERO)).unwrap();
        assert!(r.get("old").is_err());
        assert!(r.get("new").is_ok() && r.get("third").is_ok());
        // Both open sessions busy: a third cannot open.
        let _a = r.get("new").unwrap().reserve_turn().unwrap();
        let _b = r.get("third").unwrap().reserve_turn().unwrap();
        let e = r.open(session("fourth", Duration::ZERO)).unwrap_err();
        assert!(e.message.contains("max_concurrent"), "{e}");
    }

    #[tokio::test]
    async fn idle_sessions_expire_and_stored_ones_load_until_they_would_have() {
        let r = registry(10, SessionStorage::Persistent, "expiry");
        r.open(session("idle", Duration::from_secs(61))).unwrap();
        r.open(session("fresh", Duration::from_secs(5))).unwrap();
        let busy = session("busy", Duration::from_secs(120));
        let _turn = busy.reserve_turn().unwrap();
        // reserve_turn touches; age it again so only the turn keeps it.
        *busy.last_used.lock().unwrap() = Instant::now() - Duration::from_secs(120);
        r.open(busy).unwrap();
        let mut never_opened = state("m");
        never_opened.updated = now_secs() - 120;
        r.save("never-opened", &never_opened).await;
        r.expire().await;
        let store = r.store.as_ref().unwrap();
        let swept = store.get_session("never-opened".into()).await.unwrap();
        assert!(
            swept.is_none(),
            "a stored session unused past idle_timeout is deleted"
        );
        assert!(r.get("idle").is_err());
        assert!(r.get("fresh").is_ok() && r.get("busy").is_ok());

        r.save("stored", &state("m2")).await;
        assert_eq!(r.find("stored").await.unwrap().model, "m2");
        let mut stale = state("m3");
        stale.updated = now_secs() - 61;
        r.save("stale", &stale).await;
        let e = r.find("stale").await.unwrap_err();
        assert_eq!(e.code, code::RESOURCE_NOT_FOUND);
        // And it is gone from the store.
        assert!(r.find("stale").await.is_err());
    }

    #[tokio::test]
    async fn memory_sessions_are_not_found_once_closed_and_say_why() {
        let r = registry(1, SessionStorage::Memory, "mem");
        r.save("x", &state("m")).await;
        let e = r.find("x").await.unwrap_err();
        assert!(e.message.contains("storage: memory"), "{e}");
    }
}
