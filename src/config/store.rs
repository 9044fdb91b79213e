//! `store:` and `responses:` sections: where the router's embedded database lives, and how
//! long stored Responses are kept.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::reader::{child, Keys, Reader};

/// `store:`: the router's embedded database (stored responses; files' metadata and agent
/// sessions use it too). Created on first use, so a router that never stores anything
/// writes nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// The database file (`~` and paths relative to the config file resolved at load).
    pub path: PathBuf,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            path: PathBuf::from("./data/continuum.redb"),
        }
    }
}

/// `responses:`: OpenAI's Responses API state.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesConfig {
    /// Stored responses older than this are deleted (by a background sweep).
    pub retention: Duration,
}

impl Default for ResponsesConfig {
    fn default() -> ResponsesConfig {
        ResponsesConfig {
            retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

const STORE: Keys = Keys {
    known: &["path"],
    unsupported: &[],
};

const RESPONSES: Keys = Keys {
    known: &["retention"],
    unsupported: &[],
};

/// Reads the `store:` section.
pub fn read_store(v: Option<&Value>, r: &mut Reader) -> StoreConfig {
    let p = "store";
    let mut c = StoreConfig::default();
    let Some(m) = v.and_then(|v| r.section(v, p, &STORE)) else {
        return c;
    };
    if let Some(path) = r.string(m, p, "path") {
        if path.is_empty() {
            r.error(child(p, "path"), "must not be empty");
        }
        c.path = PathBuf::from(path);
    }
    c
}

/// Reads the `responses:` section.
pub fn read_responses(v: Option<&Value>, r: &mut Reader) -> ResponsesConfig {
    let p = "responses";
    let mut c = ResponsesConfig::default();
    let Some(m) = v.and_then(|v| r.section(v, p, &RESPONSES)) else {
        return c;
    };
    if let Some(d) = r.duration(m, p, "retention") {
        if d < Duration::from_secs(60) {
            r.error(child(p, "retention"), "must be at least 1m");
        }
        c.retention = d;
    }
    c
}
