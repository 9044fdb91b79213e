//! What a client connection is held to: the `server` timeouts and the cap on open
//! connections, with `auto` turned into a number from the process's open-file limit.

use std::time::Duration;

use crate::config::ServerConfig;

/// Descriptors kept out of the connection cap for everything else the process opens
/// (listeners, the store, log and data files, the runtime's own).
const RESERVED_DESCRIPTORS: usize = 64;

/// The highest cap `auto` gives, whatever the open-file limit: about 10,000 idle
/// connections cost some 170 MB; a bigger cap is a deliberate `max_connections`.
const AUTO_CAP_MAX: usize = 10_000;

/// The open-file limit assumed when it cannot be read (the usual Linux soft default).
const ASSUMED_OPEN_FILES: usize = 1024;

/// The limits every client connection of one router is held to.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConnLimits {
    /// Longest time to send a request's headers.
    pub(super) header_read: Duration,
    /// Longest silence while a request body is read.
    pub(super) body_read: Duration,
    /// Longest idle wait on a kept-alive connection.
    pub(super) keep_alive: Duration,
    /// Longest a client may take none of the bytes waiting for it.
    pub(super) client_write: Duration,
    /// Most connections open at once, over every listener and worker.
    pub(super) max_connections: usize,
}

impl ConnLimits {
    /// The limits `server` sets, with an `auto` cap resolved.
    pub(super) fn from_config(server: &ServerConfig) -> ConnLimits {
        ConnLimits {
            header_read: server.header_read_timeout,
            body_read: server.body_read_timeout,
            keep_alive: server.keep_alive_timeout,
            client_write: server.client_write_timeout,
            max_connections: server
                .max_connections
                .unwrap_or_else(|| auto_cap(open_file_limit())),
        }
    }
}

/// The cap `auto` gives for an open-file limit of `open_files`: half of what is left after
/// a reserve, since every proxied request holds a second descriptor for its backend
/// connection; at most [`AUTO_CAP_MAX`], at least 1.
pub(super) fn auto_cap(open_files: usize) -> usize {
    (open_files.saturating_sub(RESERVED_DESCRIPTORS) / 2).clamp(1, AUTO_CAP_MAX)
}

/// The soft open-file limit (`RLIMIT_NOFILE`), read from `/proc/self/limits` (no unsafe
/// `getrlimit`); [`ASSUMED_OPEN_FILES`] where that file is missing or unreadable.
fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| parse_open_files(&text))
        .unwrap_or(ASSUMED_OPEN_FILES)
}

/// The soft limit on the "Max open files" line; `unlimited` counts as `usize::MAX`.
fn parse_open_files(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(usize::MAX);
    }
    soft.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_open_file_limit_is_read_from_proc_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             96362                96362                processes \n\
                    Max open files            20000                524288               files     \n";
        assert_eq!(parse_open_files(text), Some(20_000));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_files(unlimited), Some(usize::MAX));
        assert_eq!(parse_open_files("Max processes 1 1 processes\n"), None);
    }

    #[test]
    fn auto_leaves_a_descriptor_per_connection_for_its_backend() {
        assert_eq!(auto_cap(1024), 480);
        assert_eq!(auto_cap(20_000), 9_968);
        assert_eq!(auto_cap(1 << 20), AUTO_CAP_MAX);
        assert_eq!(auto_cap(usize::MAX), AUTO_CAP_MAX);
        assert_eq!(auto_cap(10), 1);
    }
}
