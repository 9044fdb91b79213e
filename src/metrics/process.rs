//! Gauges about the router process itself: tasks alive on its runtimes, resident memory
//! and open descriptors. They are what shows a leak — a task, a buffer or a socket a
//! failed request left behind — and the fault matrix checks that they return to their
//! baseline after every fault.

use std::fmt::Write as _;
use std::sync::Mutex;

/// The worker threads' runtimes, where every connection and request is served, so a
/// scrape can count their live tasks. (Health checks and discovery run on the runtime
/// that started the router, which may be an embedding program's own: not counted.)
#[derive(Default)]
pub struct Runtimes {
    handles: Mutex<Vec<tokio::runtime::Handle>>,
}

impl Runtimes {
    /// Counts `handle`'s tasks from now on (called once per runtime, at start).
    pub fn register(&self, handle: tokio::runtime::Handle) {
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle);
    }

    /// Tasks alive (spawned and not yet finished) on every registered runtime.
    pub fn alive_tasks(&self) -> usize {
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|h| h.metrics().num_alive_tasks())
            .sum()
    }
}

/// Appends the process gauges: `continuum_runtime_alive_tasks`, and where the system
/// tells them (Linux `/proc`), `process_resident_memory_bytes` and `process_open_fds`
/// (the Prometheus client libraries' standard names).
pub fn render(out: &mut String, runtimes: &Runtimes) {
    let _ = write!(
        out,
        "# HELP continuum_runtime_alive_tasks Tasks alive on the router's worker runtimes (connections, requests, streams).\n# TYPE continuum_runtime_alive_tasks gauge\ncontinuum_runtime_alive_tasks {}\n",
        runtimes.alive_tasks()
    );
    if let Some(bytes) = resident_bytes() {
        let _ = write!(
            out,
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {bytes}\n"
        );
    }
    if let Some(fds) = open_fds() {
        let _ = write!(
            out,
            "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds {fds}\n"
        );
    }
}

/// `VmRSS` of `/proc/self/status`, in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Entries of `/proc/self/fd` (less the one reading it).
fn open_fds() -> Option<usize> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(entries.count().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_tasks_until_they_finish_and_reads_the_process() {
        let runtimes = Runtimes::default();
        runtimes.register(tokio::runtime::Handle::current());
        let base = runtimes.alive_tasks();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = rx.await;
        });
        assert_eq!(runtimes.alive_tasks(), base + 1);
        tx.send(()).unwrap();
        task.await.unwrap();
        assert_eq!(runtimes.alive_tasks(), base);
        let mut out = String::new();
        render(&mut out, &runtimes);
        assert!(
            out.contains(&format!("continuum_runtime_alive_tasks {base}\n")),
            "{out}"
        );
        if cfg!(target_os = "linux") {
            assert!(out.contains("process_resident_memory_bytes "), "{out}");
            assert!(out.contains("process_open_fds "), "{out}");
        }
    }
}
