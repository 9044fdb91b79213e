//! Memory freed after a spike given back to the system while the router is idle.
//!
//! mimalloc (the binary's allocator) returns freed pages lazily, on a thread's later
//! allocations; a worker that served one large reply and then went quiet would keep
//! them indefinitely. Each worker asks for a collection on its heartbeat, so a spike's
//! memory is returned within seconds of the spike, busy or not.

/// Frees this thread's empty mimalloc pages and purges those whose delay has passed.
/// Cheap (microseconds), not forced: nothing in use is touched. A no-op in effect when
/// mimalloc is not the global allocator (an embedding program's choice): its heaps are
/// then empty.
#[allow(unsafe_code)]
pub(super) fn release_freed() {
    // SAFETY: `mi_collect` takes no pointers and only walks the calling thread's own heap
    // and mimalloc's internal free lists; it may be called at any time from any thread.
    unsafe { libmimalloc_sys::mi_collect(false) }
}
