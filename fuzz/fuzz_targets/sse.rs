//! The SSE and NDJSON decoders and the passthrough framer: no panic, the same events
//! however the bytes are split, and a framer that neither loses nor alters a byte.
#![no_main]

// The allocation guard (see `continuum_fuzz::MAX_ALLOCATION`).
extern crate continuum_fuzz;

use bytes::Bytes;
use continuum::protocol::sse::{self, Event, LineDecoder, SseDecoder, SseFramer};
use continuum_fuzz::chunks;
use libfuzzer_sys::fuzz_target;

fn events(pieces: &[&[u8]], max: usize) -> Result<Vec<Event>, usize> {
    let mut d = SseDecoder::new(max);
    let mut out = Vec::new();
    for p in pieces {
        if d.push(p).is_err() {
            return Err(out.len());
        }
        while let Some(e) = d.next_event() {
            out.push(e);
        }
    }
    out.extend(d.finish());
    Ok(out)
}

fn lines(pieces: &[&[u8]], max: usize) -> Result<Vec<Bytes>, usize> {
    let mut d = LineDecoder::new(max);
    let mut out = Vec::new();
    for p in pieces {
        if d.push(p).is_err() {
            return Err(out.len());
        }
        while let Some(l) = d.next_line() {
            out.push(l);
        }
    }
    out.extend(d.finish());
    Ok(out)
}

/// Whether a stream's bytes so far end with a blank line (an event's end).
fn ends_on_boundary(out: &[u8]) -> bool {
    let Some(body) = out.strip_suffix(b"\n") else {
        return false;
    };
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    body.is_empty() || body.ends_with(b"\n")
}

/// Every byte passed through exactly once, each output ending on an event boundary.
fn framed(pieces: &[&[u8]], max: usize) -> Option<Vec<u8>> {
    let mut f = SseFramer::new(max);
    let mut out = Vec::new();
    for p in pieces {
        match f.push(Bytes::copy_from_slice(p)) {
            Ok(Some(done)) => {
                out.extend_from_slice(&done);
                assert!(ends_on_boundary(&out), "framer handed out a partial event");
            }
            Ok(None) => {}
            Err(_) => return None,
        }
    }
    out.extend(f.take_rest().unwrap_or_default());
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let pieces = chunks(data);
    let unlimited = usize::MAX;
    assert_eq!(
        events(&[data], unlimited),
        events(&pieces, unlimited),
        "SSE events depend on how the bytes were split"
    );
    assert_eq!(
        lines(&[data], unlimited),
        lines(&pieces, unlimited),
        "NDJSON lines depend on how the bytes were split"
    );
    assert_eq!(framed(&pieces, unlimited).as_deref(), Some(data));
    // A small limit: refused or decoded, never a panic.
    let _ = events(&pieces, 16);
    let _ = lines(&pieces, 16);
    let _ = framed(&pieces, 16);
    let raw: Vec<u8> = sse::raw_events(data).flatten().copied().collect();
    assert_eq!(raw, data, "raw_events lost or added bytes");
    for field in sse::data_fields(data) {
        let _ = sse::encode(Some("e"), field);
    }
});
