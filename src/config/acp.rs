//! `acp:`: the agent mode (`continuum acp`, `--mode stdio`), in which an editor speaks the
//! Agent Client Protocol to the router over stdin/stdout. The keys are the original
//! Continuum Router's.

use std::time::Duration;

use serde_json::Value;

use super::reader::{child, did_you_mean, Keys, Reader};

const ACP: Keys = Keys {
    known: &[
        "enabled",
        "transport",
        "default_model",
        "capabilities",
        "permissions",
        "sessions",
    ],
    unsupported: &[],
};
const TRANSPORT: Keys = Keys {
    known: &["stdio"],
    unsupported: &[],
};
const STDIO: Keys = Keys {
    known: &["enabled"],
    unsupported: &[],
};
const CAPABILITIES: Keys = Keys {
    known: &["load_session", "mcp"],
    unsupported: &[],
};
const PERMISSIONS: Keys = Keys {
    known: &["default_policy", "auto_allow", "always_ask"],
    unsupported: &[],
};
const SESSIONS: Keys = Keys {
    known: &["max_concurrent", "idle_timeout", "storage"],
    unsupported: &[],
};

/// The kinds of tool call ACP names (a permission is given or asked per kind).
pub const TOOL_KINDS: &[&str] = &[
    "read",
    "edit",
    "delete",
    "move",
    "search",
    "execute",
    "think",
    "fetch",
    "switch_mode",
    "other",
];

/// `acp:`.
#[derive(Debug, Clone, PartialEq)]
pub struct AcpConfig {
    /// Agent mode may run with this config (`false` makes `continuum acp` refuse).
    pub enabled: bool,
    /// `transport.stdio.enabled`: the only transport; `false` refuses agent mode too.
    pub stdio: bool,
    /// The model a new session uses (`None`: the first model the router serves).
    pub default_model: Option<String>,
    /// `capabilities.load_session`: sessions can be loaded again (`session/load`).
    pub load_session: bool,
    /// `capabilities.mcp`: MCP servers the client names are connected and their tools
    /// offered to the model.
    pub mcp: bool,
    /// Which tool calls ask the user first.
    pub permissions: PermissionsConfig,
    /// Session limits and storage.
    pub sessions: SessionsConfig,
}

/// `acp.permissions`.
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionsConfig {
    /// What a kind in neither list gets.
    pub default_policy: Policy,
    /// Kinds run without asking.
    pub auto_allow: Vec<String>,
    /// Kinds that always ask (`session/request_permission`).
    pub always_ask: Vec<String>,
}

/// What a tool call gets without asking, or whether it asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Ask the user (`ask_always`).
    Ask,
    /// Run it (`auto_allow`).
    Allow,
    /// Refuse it, and tell the model so (`deny`).
    Deny,
}

impl PermissionsConfig {
    /// The policy for a tool call of `kind`.
    pub fn policy(&self, kind: &str) -> Policy {
        if self.always_ask.iter().any(|k| k == kind) {
            Policy::Ask
        } else if self.auto_allow.iter().any(|k| k == kind) {
            Policy::Allow
        } else {
            self.default_policy
        }
    }
}

/// `acp.sessions`.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionsConfig {
    /// Most sessions open at once (`session/new` and `session/load` beyond it fail).
    pub max_concurrent: usize,
    /// A session unused for this long is closed (and, stored, deleted).
    pub idle_timeout: Duration,
    /// Where sessions are kept.
    pub storage: SessionStorage,
}

/// `acp.sessions.storage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStorage {
    /// In memory: gone when the process ends.
    Memory,
    /// In the router's embedded database (`store.path`): `session/load` works across
    /// restarts.
    Persistent,
}

impl SessionStorage {
    /// Its config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStorage::Memory => "memory",
            SessionStorage::Persistent => "persistent",
        }
    }
}

impl Policy {
    /// Its config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Ask => "ask_always",
            Policy::Allow => "auto_allow",
            Policy::Deny => "deny",
        }
    }
}

impl Default for AcpConfig {
    fn default() -> AcpConfig {
        AcpConfig {
            enabled: true,
            stdio: true,
            default_model: None,
            load_session: true,
            mcp: true,
            permissions: PermissionsConfig {
                default_policy: Policy::Ask,
                auto_allow: vec!["read".into(), "search".into(), "think".into()],
                always_ask: vec!["edit".into(), "delete".into(), "execute".into()],
            },
            sessions: SessionsConfig {
                max_concurrent: 10,
                idle_timeout: Duration::from_secs(3600),
                storage: SessionStorage::Memory,
            },
        }
    }
}

/// Reads `acp:`.
pub fn read_acp(v: Option<&Value>, r: &mut Reader) -> AcpConfig {
    let mut c = AcpConfig::default();
    let p = "acp";
    let Some(m) = v.and_then(|v| r.section(v, p, &ACP)) else {
        return c;
    };
    if let Some(b) = r.boolean(m, p, "enabled") {
        c.enabled = b;
    }
    let tp = child(p, "transport");
    if let Some(t) = m
        .get("transport")
        .and_then(|v| r.section(v, &tp, &TRANSPORT))
    {
        let sp = child(&tp, "stdio");
        if let Some(s) = t.get("stdio").and_then(|v| r.section(v, &sp, &STDIO)) {
            if let Some(b) = r.boolean(s, &sp, "enabled") {
                c.stdio = b;
            }
        }
    }
    if let Some(model) = r.string(m, p, "default_model") {
        if model.trim().is_empty() {
            r.error(
                child(p, "default_model"),
                "must name a model (or be left out)",
            );
        } else {
            c.default_model = Some(model);
        }
    }
    let cp = child(p, "capabilities");
    if let Some(caps) = m
        .get("capabilities")
        .and_then(|v| r.section(v, &cp, &CAPABILITIES))
    {
        if let Some(b) = r.boolean(caps, &cp, "load_session") {
            c.load_session = b;
        }
        if let Some(b) = r.boolean(caps, &cp, "mcp") {
            c.mcp = b;
        }
    }
    read_permissions(m.get("permissions"), &child(p, "permissions"), &mut c, r);
    read_sessions(m.get("sessions"), &child(p, "sessions"), &mut c, r);
    c
}

fn read_permissions(v: Option<&Value>, p: &str, c: &mut AcpConfig, r: &mut Reader) {
    let Some(m) = v.and_then(|v| r.section(v, p, &PERMISSIONS)) else {
        return;
    };
    if let Some(policy) = r.string(m, p, "default_policy") {
        match policy.as_str() {
            "ask_always" | "ask" => c.permissions.default_policy = Policy::Ask,
            "auto_allow" | "allow" => c.permissions.default_policy = Policy::Allow,
            "deny" => c.permissions.default_policy = Policy::Deny,
            other => r.error(
                child(p, "default_policy"),
                format!("unknown policy '{other}' (expected ask_always, auto_allow or deny)"),
            ),
        }
    }
    for key in ["auto_allow", "always_ask"] {
        let Some(kinds) = r.string_list(m, p, key) else {
            continue;
        };
        for (i, kind) in kinds.iter().enumerate() {
            if !TOOL_KINDS.contains(&kind.as_str()) {
                let hint = match did_you_mean(kind, TOOL_KINDS.iter().copied()) {
                    Some(s) => format!("; did you mean '{s}'?"),
                    None => format!(" (expected one of: {})", TOOL_KINDS.join(", ")),
                };
                r.error(
                    format!("{}[{i}]", child(p, key)),
                    format!("unknown tool kind '{kind}'{hint}"),
                );
            }
        }
        if key == "auto_allow" {
            c.permissions.auto_allow = kinds;
        } else {
            c.permissions.always_ask = kinds;
        }
    }
    let both: Vec<&String> = c
        .permissions
        .auto_allow
        .iter()
        .filter(|k| c.permissions.always_ask.contains(k))
        .collect();
    if !both.is_empty() {
        let names: Vec<&str> = both.iter().map(|s| s.as_str()).collect();
        r.error(
            child(p, "always_ask"),
            format!(
                "{} is in both auto_allow and always_ask; keep each kind in one list",
                names.join(", ")
            ),
        );
    }
}

fn read_sessions(v: Option<&Value>, p: &str, c: &mut AcpConfig, r: &mut Reader) {
    let Some(m) = v.and_then(|v| r.section(v, p, &SESSIONS)) else {
        return;
    };
    if let Some(n) = r.integer(m, p, "max_concurrent") {
        if n == 0 || n > 10_000 {
            r.error(
                child(p, "max_concurrent"),
                format!("{n} is out of range (1 to 10000)"),
            );
        } else {
            c.sessions.max_concurrent = n as usize;
        }
    }
    if let Some(d) = r.duration(m, p, "idle_timeout") {
        if d < Duration::from_secs(1) {
            r.error(child(p, "idle_timeout"), "must be at least 1s");
        } else {
            c.sessions.idle_timeout = d;
        }
    }
    if let Some(s) = r.string(m, p, "storage") {
        match s.as_str() {
            "memory" => c.sessions.storage = SessionStorage::Memory,
            "persistent" | "store" => c.sessions.storage = SessionStorage::Persistent,
            other => r.error(
                child(p, "storage"),
                format!(
                    "unknown storage '{other}' (expected memory, or persistent for the router's embedded database at store.path)"
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: &str) -> (AcpConfig, Vec<String>) {
        let v: Value = serde_yaml::from_str(yaml).unwrap();
        let mut r = Reader::default();
        let c = read_acp(v.get("acp"), &mut r);
        let errors = r
            .errors
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message));
        (c, errors.collect())
    }

    #[test]
    fn the_originals_example_reads_as_written() {
        let (c, errors) = read(
            "acp:\n  enabled: true\n  transport: {stdio: {enabled: true}}\n  capabilities: {load_session: true, mcp: true}\n  default_model: llama3.2\n  permissions:\n    default_policy: ask_always\n    auto_allow: [read, search, think]\n    always_ask: [edit, delete, execute]\n  sessions: {max_concurrent: 10, idle_timeout: 1h, storage: memory}\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.default_model.as_deref(), Some("llama3.2"));
        assert_eq!(c.permissions.policy("read"), Policy::Allow);
        assert_eq!(c.permissions.policy("edit"), Policy::Ask);
        assert_eq!(c.permissions.policy("fetch"), Policy::Ask);
        assert_eq!(c.sessions.idle_timeout, Duration::from_secs(3600));
    }

    #[test]
    fn bad_values_are_named_by_their_key_path() {
        let (_, errors) = read(
            "acp:\n  permissions:\n    default_policy: sometimes\n    auto_allow: [read, exec]\n    always_ask: [read]\n  sessions: {max_concurrent: 0, storage: sqlite, idle_timeout: 5}\n",
        );
        let all = errors.join("\n");
        assert!(
            all.contains("acp.permissions.default_policy: unknown policy 'sometimes'"),
            "{all}"
        );
        assert!(
            all.contains("acp.permissions.auto_allow[1]: unknown tool kind 'exec'"),
            "{all}"
        );
        assert!(
            all.contains("read is in both auto_allow and always_ask"),
            "{all}"
        );
        assert!(
            all.contains("acp.sessions.max_concurrent: 0 is out of range"),
            "{all}"
        );
        assert!(
            all.contains("acp.sessions.storage: unknown storage 'sqlite'"),
            "{all}"
        );
        assert!(
            all.contains("acp.sessions.idle_timeout: durations need a unit"),
            "{all}"
        );
    }

    #[test]
    fn deny_refuses_kinds_in_neither_list() {
        let (c, errors) = read(
            "acp:\n  permissions: {default_policy: deny, auto_allow: [read], always_ask: []}\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.permissions.policy("read"), Policy::Allow);
        assert_eq!(c.permissions.policy("execute"), Policy::Deny);
    }
}
