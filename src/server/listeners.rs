//! Binding the listening sockets: TCP addresses and Unix socket files (with their mode,
//! and stale files from an earlier run replaced).

use std::path::PathBuf;

use crate::config::{BindAddr, ServerConfig};

use super::{BoundAddr, StartError};

/// A bound listening socket, shared by every worker (each registers a clone of the fd).
pub(super) enum StdListener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

impl StdListener {
    pub(super) fn try_clone(&self) -> std::io::Result<StdListener> {
        Ok(match self {
            StdListener::Tcp(l) => StdListener::Tcp(l.try_clone()?),
            StdListener::Unix(l) => StdListener::Unix(l.try_clone()?),
        })
    }
}

/// Every address of `server.bind_address`, bound.
pub(super) struct Listeners {
    /// The sockets, in the order of `bind_address`.
    pub(super) listeners: Vec<StdListener>,
    /// What each one serves, with real ports.
    pub(super) bound: Vec<BoundAddr>,
    /// The Unix socket files, removed when the router stops.
    pub(super) unix_paths: Vec<PathBuf>,
}

impl Listeners {
    /// Binds every address of `server.bind_address`, non-blocking.
    pub(super) fn bind(server: &ServerConfig) -> Result<Listeners, StartError> {
        let mut listeners = Vec::new();
        let mut bound = Vec::new();
        let mut unix_paths = Vec::new();
        for addr in &server.bind_address {
            let fail = |e: std::io::Error| StartError::Bind {
                addr: addr.to_string(),
                reason: e.to_string(),
            };
            match addr {
                BindAddr::Tcp(a) => {
                    let l = std::net::TcpListener::bind(a).map_err(fail)?;
                    l.set_nonblocking(true).map_err(fail)?;
                    bound.push(BoundAddr::Tcp(l.local_addr().map_err(fail)?));
                    listeners.push(StdListener::Tcp(l));
                }
                BindAddr::Unix(path) => {
                    let l = bind_unix(path, server.socket_mode)?;
                    bound.push(BoundAddr::Unix(path.clone()));
                    unix_paths.push(path.clone());
                    listeners.push(StdListener::Unix(l));
                }
            }
        }
        Ok(Listeners {
            listeners,
            bound,
            unix_paths,
        })
    }
}

fn bind_unix(
    path: &PathBuf,
    mode: Option<u32>,
) -> Result<std::os::unix::net::UnixListener, StartError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let fail = |reason: String| StartError::Bind {
        addr: format!("unix:{}", path.display()),
        reason,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(fail(
                "the path exists and is not a socket; refusing to replace it".into(),
            ));
        }
        // A socket file left by an earlier run refuses connections; anything else (a live
        // listener, or one we may not talk to) is left alone.
        match std::os::unix::net::UnixStream::connect(path) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Ok(_) => return Err(fail("another process is listening on this socket".into())),
            Err(e) => {
                return Err(fail(format!(
                    "the socket exists and cannot be checked ({e}); refusing to replace it"
                )))
            }
        }
        std::fs::remove_file(path)
            .map_err(|e| fail(format!("cannot remove the stale socket file: {e}")))?;
    }
    // With a socket_mode, bind under a private name, set the mode, then move it into place,
    // so the socket is never reachable with looser permissions.
    let bind_at = match mode {
        Some(_) => {
            let mut name = path
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_default();
            name.push(format!(".{}.tmp", std::process::id()));
            path.with_file_name(name)
        }
        None => path.clone(),
    };
    let listener =
        std::os::unix::net::UnixListener::bind(&bind_at).map_err(|e| fail(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| fail(e.to_string()))?;
    if let Some(mode) = mode {
        let placed = std::fs::set_permissions(&bind_at, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot set socket_mode {mode:o}: {e}"))
            .and_then(|()| {
                std::fs::rename(&bind_at, path)
                    .map_err(|e| format!("cannot move the socket into place: {e}"))
            });
        if let Err(reason) = placed {
            let _ = std::fs::remove_file(&bind_at);
            return Err(fail(reason));
        }
    }
    Ok(listener)
}
