//! Helpers shared by the fuzz targets.

/// Chunk sizes cycled through when a target feeds its input piecewise: single bytes and
/// odd splits find the bugs in state carried across frames (a CRLF cut in two, a UTF-8
/// character split, an event ending exactly on a frame's end).
const SIZES: [usize; 8] = [1, 2, 3, 5, 8, 13, 64, 7];

/// `data` cut into pieces, the cut points depending on the input (its length picks where
/// the size cycle starts) so the fuzzer can steer them.
pub fn chunks(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = data.len() % SIZES.len();
    while !rest.is_empty() {
        let n = SIZES[i % SIZES.len()].min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
        i += 1;
    }
    out
}

/// A few error statuses, chosen by the input, so replies are read as errors too.
pub fn error_status(data: &[u8]) -> http::StatusCode {
    const CODES: [u16; 7] = [400, 401, 404, 413, 429, 500, 529];
    http::StatusCode::from_u16(CODES[data.len() % CODES.len()]).expect("valid status")
}

/// The largest single allocation a fuzz input may cause. Inputs are a few KiB, so a larger
/// request is an allocation sized by the input's claims rather than its bytes (a length
/// field, a count): the unbounded allocation fuzzing must find. libFuzzer's own
/// `-malloc_limit_mb` needs a sanitizer's allocator hooks, which a build with `-s none`
/// does not have; `-rss_limit_mb` still catches slow growth.
pub const MAX_ALLOCATION: usize = 64 << 20;

/// The system allocator, aborting (a crash libFuzzer records) on any allocation over
/// [`MAX_ALLOCATION`].
pub struct Guarded;

// SAFETY: every call is passed to `System` unchanged, after the size check.
unsafe impl std::alloc::GlobalAlloc for Guarded {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        check(layout.size());
        std::alloc::System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        check(layout.size());
        std::alloc::System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        std::alloc::System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        std::alloc::System.realloc(ptr, layout, new_size)
    }
}

fn check(size: usize) {
    if size > MAX_ALLOCATION {
        // No allocation here: say so with a fixed message, then abort.
        let msg = b"continuum-fuzz: an allocation over 64 MiB (unbounded allocation)\n";
        let _ = std::io::Write::write_all(&mut std::io::stderr(), msg);
        std::process::abort();
    }
}

#[global_allocator]
static GUARD: Guarded = Guarded;
