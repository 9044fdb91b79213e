//! `files:` section (the original Continuum Router's names): the Files API — where
//! uploads are kept, how big they may be, how long, and who may read them.

use std::path::PathBuf;

use serde_json::Value;

use super::access::Scope;
use super::reader::{child, Keys, Reader};

/// Where file metadata lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataStorage {
    /// In this process: files are forgotten at restart (their blobs are orphans).
    Memory,
    /// In the embedded database (`store.path`): files survive restarts and `kill -9`.
    Persistent,
}

/// Who may use the Files API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilesAuthMethod {
    /// Anyone who may call the API at all.
    None,
    /// A valid API key holding `required_scope`.
    ApiKey,
}

/// `files.auth`.
#[derive(Debug, Clone, PartialEq)]
pub struct FilesAuth {
    /// `none` or `api_key`.
    pub method: FilesAuthMethod,
    /// The scope a key needs (default `files`).
    pub required_scope: Scope,
    /// A file is only its uploader's (`user_id`, else key id): others get 404.
    pub enforce_ownership: bool,
    /// Keys with the `admin` scope see every file.
    pub admin_can_access_all: bool,
}

/// `files:`.
#[derive(Debug, Clone, PartialEq)]
pub struct FilesConfig {
    /// Serve the Files API (and resolve file references in chat).
    pub enabled: bool,
    /// Largest upload, in bytes.
    pub max_file_size: u64,
    /// Where blobs are kept (created on first upload).
    pub storage_path: PathBuf,
    /// Files older than this many days are deleted (0: kept forever).
    pub retention_days: u64,
    /// Where metadata lives.
    pub metadata_storage: MetadataStorage,
    /// Delete blobs without metadata at start.
    pub cleanup_orphans_on_startup: bool,
    /// Who may use the API.
    pub auth: FilesAuth,
}

impl Default for FilesConfig {
    fn default() -> FilesConfig {
        FilesConfig {
            enabled: true,
            max_file_size: 512 << 20,
            storage_path: PathBuf::from("./data/files"),
            retention_days: 0,
            metadata_storage: MetadataStorage::Persistent,
            cleanup_orphans_on_startup: false,
            auth: FilesAuth {
                method: FilesAuthMethod::None,
                required_scope: Scope::Files,
                enforce_ownership: true,
                admin_can_access_all: true,
            },
        }
    }
}

const FILES: Keys = Keys {
    known: &[
        "enabled",
        "max_file_size",
        "storage_path",
        "retention_days",
        "metadata_storage",
        "cleanup_orphans_on_startup",
        "auth",
    ],
    unsupported: &[],
};

const AUTH: Keys = Keys {
    known: &[
        "method",
        "required_scope",
        "enforce_ownership",
        "admin_can_access_all",
    ],
    unsupported: &[],
};

/// Reads the `files:` section.
pub fn read_files(v: Option<&Value>, r: &mut Reader) -> FilesConfig {
    let p = "files";
    let mut c = FilesConfig::default();
    let Some(m) = v.and_then(|v| r.section(v, p, &FILES)) else {
        return c;
    };
    c.enabled = r.boolean(m, p, "enabled").unwrap_or(true);
    if let Some(n) = r.byte_size(m, p, "max_file_size") {
        if n == 0 {
            r.error(child(p, "max_file_size"), "must be larger than 0");
        }
        c.max_file_size = n;
    }
    if let Some(path) = r.string(m, p, "storage_path") {
        if path.is_empty() {
            r.error(child(p, "storage_path"), "must not be empty");
        }
        c.storage_path = PathBuf::from(path);
    }
    if let Some(d) = r.integer(m, p, "retention_days") {
        c.retention_days = d;
    }
    match r.string(m, p, "metadata_storage").as_deref() {
        None | Some("persistent") => {}
        Some("memory") => c.metadata_storage = MetadataStorage::Memory,
        Some(other) => r.error(
            child(p, "metadata_storage"),
            format!("'{other}' is not one of: memory, persistent"),
        ),
    }
    c.cleanup_orphans_on_startup = r
        .boolean(m, p, "cleanup_orphans_on_startup")
        .unwrap_or(false);
    let ap = child(p, "auth");
    if let Some(a) = m.get("auth").and_then(|v| r.section(v, &ap, &AUTH)) {
        match r.string(a, &ap, "method").as_deref() {
            None | Some("none") => {}
            Some("api_key") => c.auth.method = FilesAuthMethod::ApiKey,
            Some(other) => r.error(
                child(&ap, "method"),
                format!("'{other}' is not one of: none, api_key"),
            ),
        }
        if let Some(s) = r.string(a, &ap, "required_scope") {
            match Scope::parse_name(&s) {
                Some(scope) => c.auth.required_scope = scope,
                None => r.error(
                    child(&ap, "required_scope"),
                    format!("'{s}' is not a scope (read, write, files, admin, chat, embeddings, images, audio)"),
                ),
            }
        }
        if let Some(b) = r.boolean(a, &ap, "enforce_ownership") {
            c.auth.enforce_ownership = b;
        }
        if let Some(b) = r.boolean(a, &ap, "admin_can_access_all") {
            c.auth.admin_can_access_all = b;
        }
    }
    c
}
