//! Every open client connection of a router, over all its listeners and workers: the cap
//! on how many are open (`server.max_connections`), the choice of which to close when it is
//! reached (idle keep-alive connections first, the oldest first; then connections still
//! sending their headers long after they started), and the drain at shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::phase::{now, ConnState, Phase};

/// A connection still sending its request headers this long after they began is slow (a
/// real client sends them in one go), and may be shed. Never more than half of
/// `server.header_read_timeout`.
const SLOW_HEADERS: Duration = Duration::from_secs(1);

/// The open connections and the cap.
pub(super) struct Registry {
    cap: usize,
    /// How many to shed at once at the cap, so that not every accept scans them all.
    batch: usize,
    slow_headers: u64,
    slots: Mutex<Slots>,
    draining: AtomicBool,
}

#[derive(Default)]
struct Slots {
    entries: Vec<Option<Arc<ConnState>>>,
    free: Vec<usize>,
    open: usize,
}

/// An admitted connection's place in the registry; dropping it gives the place back.
pub(super) struct Ticket {
    registry: Arc<Registry>,
    slot: usize,
    state: Arc<ConnState>,
}

impl Ticket {
    /// The connection's state.
    pub(super) fn state(&self) -> &Arc<ConnState> {
        &self.state
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut slots = self.registry.lock();
        // A shed connection has already left.
        if let Some(Some(s)) = slots.entries.get(self.slot) {
            if Arc::ptr_eq(s, &self.state) {
                slots.entries[self.slot] = None;
                slots.free.push(self.slot);
                slots.open -= 1;
            }
        }
    }
}

impl Registry {
    /// A registry for at most `cap` connections whose headers time out after
    /// `header_read_timeout`.
    pub(super) fn new(cap: usize, header_read_timeout: Duration) -> Registry {
        let slow = SLOW_HEADERS.min(header_read_timeout / 2);
        Registry {
            cap: cap.max(1),
            batch: (cap / 100).max(1),
            slow_headers: u64::try_from(slow.as_nanos()).unwrap_or(u64::MAX),
            slots: Mutex::new(Slots::default()),
            draining: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes room for one more connection: its ticket, or `None` when the cap is reached
    /// and no open connection is idle or slow enough to be closed for it.
    pub(super) fn admit(self: &Arc<Self>) -> Option<Ticket> {
        let mut slots = self.lock();
        if slots.open >= self.cap && self.shed_locked(&mut slots, self.batch) == 0 {
            return None;
        }
        let state = Arc::new(ConnState::new());
        if self.draining.load(Ordering::Relaxed) {
            state.drain();
        }
        let slot = match slots.free.pop() {
            Some(i) => {
                slots.entries[i] = Some(Arc::clone(&state));
                i
            }
            None => {
                slots.entries.push(Some(Arc::clone(&state)));
                slots.entries.len() - 1
            }
        };
        slots.open += 1;
        Some(Ticket {
            registry: Arc::clone(self),
            slot,
            state,
        })
    }

    /// Closes a batch of idle and slow connections to free descriptors (the process ran
    /// out of them); how many.
    pub(super) fn shed_for_descriptors(&self) -> usize {
        let mut slots = self.lock();
        self.shed_locked(&mut slots, self.batch)
    }

    /// Sheds up to `count` connections: idle ones, the longest idle first; then ones
    /// slow to send their headers, the slowest first. Returns how many.
    fn shed_locked(&self, slots: &mut Slots, count: usize) -> usize {
        let now = now();
        let mut candidates: Vec<(u8, u64, usize)> = slots
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let (phase, since) = e.as_ref()?.phase();
                match phase {
                    Phase::Idle => Some((0, since, i)),
                    Phase::Head if now.saturating_sub(since) >= self.slow_headers => {
                        Some((1, since, i))
                    }
                    _ => None,
                }
            })
            .collect();
        candidates.sort_unstable();
        let mut shed = 0;
        for (_, _, i) in candidates.into_iter().take(count) {
            if let Some(state) = slots.entries[i].take() {
                state.shed();
                slots.free.push(i);
                slots.open -= 1;
                shed += 1;
            }
        }
        if shed > 0 {
            tracing::debug!(
                shed,
                open = slots.open,
                cap = self.cap,
                "closed idle or slow connections to make room (server.max_connections)"
            );
        }
        shed
    }

    /// Has every open connection (and every one admitted from now on) finish its request
    /// in flight and close.
    pub(super) fn drain_all(&self) {
        let slots = self.lock();
        self.draining.store(true, Ordering::Relaxed);
        for state in slots.entries.iter().flatten() {
            state.drain();
        }
    }

    /// How many connections are open.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.lock().open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_idle_connections_go_first_then_slow_ones_else_none() {
        let registry = Arc::new(Registry::new(3, Duration::from_millis(2)));
        let busy = registry.admit().unwrap();
        busy.state().busy();
        let slow = registry.admit().unwrap();
        let idle = registry.admit().unwrap();
        idle.state().idle();
        assert_eq!(registry.open(), 3);

        // Full: the idle one makes room.
        let fresh = registry.admit().unwrap();
        assert!(idle.state().is_shed() && !slow.state().is_shed());
        assert_eq!(registry.open(), 3);
        drop(idle);
        assert_eq!(
            registry.open(),
            3,
            "a shed connection was already counted out"
        );

        // Then the one slow to send its headers (the fresh one is not slow yet).
        std::thread::sleep(Duration::from_millis(5));
        fresh.state().busy();
        let next = registry.admit().unwrap();
        assert!(slow.state().is_shed());

        // Only busy ones and a new one left: no room.
        next.state().busy();
        assert!(registry.admit().is_none());
        drop(busy);
        assert!(registry.admit().is_some());
    }

    #[test]
    fn draining_reaches_open_and_later_connections() {
        let registry = Arc::new(Registry::new(10, Duration::from_secs(30)));
        let open = registry.admit().unwrap();
        registry.drain_all();
        assert!(open.state().is_draining());
        assert!(registry.admit().unwrap().state().is_draining());
    }
}
