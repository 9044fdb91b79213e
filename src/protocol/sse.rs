//! The one place streamed bytes are framed: server-sent events (OpenAI, Anthropic, Gemini
//! streams) and newline-delimited JSON (Ollama). Every stream translator, usage tap and
//! passthrough guard reads through these types, so there is one line scanner in the router.
//!
//! Linear time: each byte is scanned once, however the backend splits its frames (a 64 MB
//! event costs one pass, not one pass per frame), and an event (or NDJSON line) larger than
//! the configured limit is an error instead of unbounded buffering. Lines end with LF or
//! CRLF; an event ends at a blank line.

use bytes::{Bytes, BytesMut};

/// Largest SSE event or NDJSON line the router holds by default (`server.max_stream_event_size`).
pub const DEFAULT_MAX_EVENT: usize = 16 << 20;

/// The `[DONE]` event that ends OpenAI streams.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// A stream carried an event over the size limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a stream event is larger than {limit} bytes (server.max_stream_event_size)")]
pub struct EventTooLarge {
    /// The limit that was passed.
    pub limit: usize,
}

/// Finds the end of complete units (SSE events, or lines) in a byte stream, holding back an
/// unfinished tail. Complete bytes are handed out as slices of what arrived whenever a frame
/// ends on a boundary (the usual case), so passthrough copies nothing.
#[derive(Debug)]
struct Framer {
    held: BytesMut,
    /// Bytes of `held` already scanned.
    scanned: usize,
    /// Start of the line being scanned, in `held`.
    line_start: usize,
    /// End of the last complete unit in `held`.
    boundary: usize,
    max: usize,
    /// A unit ends at every line end (NDJSON) rather than at a blank line (SSE).
    lines: bool,
    /// A complete unit longer than `max` was scanned (it arrived whole, so nothing was held).
    oversized: bool,
}

impl Framer {
    fn new(max: usize, lines: bool) -> Framer {
        Framer {
            held: BytesMut::new(),
            scanned: 0,
            line_start: 0,
            boundary: 0,
            max,
            lines,
            oversized: false,
        }
    }

    /// Scans `buf` from the current position; updates the boundary.
    fn scan(&mut self, buf: &[u8]) {
        while let Some(at) = buf[self.scanned..].iter().position(|b| *b == b'\n') {
            let nl = self.scanned + at;
            let line = &buf[self.line_start..nl];
            if self.lines || line.is_empty() || line == b"\r" {
                if nl + 1 - self.boundary > self.max {
                    self.oversized = true;
                }
                self.boundary = nl + 1;
            }
            self.line_start = nl + 1;
            self.scanned = nl + 1;
        }
        self.scanned = buf.len();
    }

    fn reset_positions(&mut self) {
        self.scanned = 0;
        self.line_start = 0;
        self.boundary = 0;
    }

    /// Takes `data`; returns the complete units now available (possibly several), if any.
    fn push(&mut self, data: Bytes) -> Result<Option<Bytes>, EventTooLarge> {
        if self.held.is_empty() {
            self.reset_positions();
            self.scan(&data);
            if std::mem::take(&mut self.oversized) {
                return Err(EventTooLarge { limit: self.max });
            }
            let out = (self.boundary > 0).then(|| data.slice(..self.boundary));
            let rest = &data[self.boundary..];
            if rest.len() > self.max {
                return Err(EventTooLarge { limit: self.max });
            }
            if !rest.is_empty() {
                self.held.extend_from_slice(rest);
                self.scanned -= self.boundary;
                self.line_start -= self.boundary;
            }
            self.boundary = 0;
            return Ok(out);
        }
        self.held.extend_from_slice(&data);
        let held = std::mem::take(&mut self.held);
        self.scan(&held);
        self.held = held;
        if std::mem::take(&mut self.oversized) {
            return Err(EventTooLarge { limit: self.max });
        }
        let out = (self.boundary > 0).then(|| {
            let b = self.boundary;
            self.scanned -= b;
            self.line_start -= b;
            self.boundary = 0;
            self.held.split_to(b).freeze()
        });
        if self.held.len() > self.max {
            return Err(EventTooLarge { limit: self.max });
        }
        Ok(out)
    }

    /// The unfinished tail at the end of the stream.
    fn take_rest(&mut self) -> Option<Bytes> {
        self.reset_positions();
        (!self.held.is_empty()).then(|| std::mem::take(&mut self.held).freeze())
    }
}

/// Passes an SSE stream on in whole events only, so an error event the router appends never
/// lands inside a half-sent one.
#[derive(Debug)]
pub struct SseFramer(Framer);

impl SseFramer {
    /// A framer refusing events over `max` bytes.
    pub fn new(max: usize) -> SseFramer {
        SseFramer(Framer::new(max, false))
    }

    /// Takes a frame; returns the complete events it finished (a slice of it when it ends
    /// on an event boundary).
    pub fn push(&mut self, data: Bytes) -> Result<Option<Bytes>, EventTooLarge> {
        self.0.push(data)
    }

    /// What was left unfinished at the end of the stream.
    pub fn take_rest(&mut self) -> Option<Bytes> {
        self.0.take_rest()
    }
}

/// Adds complete units to those not yet handed out (without a copy when none are left).
fn append(ready: &mut Bytes, done: Bytes) {
    *ready = if ready.is_empty() {
        done
    } else {
        let mut joined = BytesMut::with_capacity(ready.len() + done.len());
        joined.extend_from_slice(ready);
        joined.extend_from_slice(&done);
        joined.freeze()
    };
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, if any.
    pub name: Option<Bytes>,
    /// The `data:` lines joined with `\n`.
    pub data: Bytes,
}

impl Event {
    /// The event name as text (empty when there is none).
    pub fn name_str(&self) -> &str {
        self.name
            .as_deref()
            .and_then(|n| std::str::from_utf8(n).ok())
            .unwrap_or("")
    }
}

impl Default for SseDecoder {
    fn default() -> SseDecoder {
        SseDecoder::new(DEFAULT_MAX_EVENT)
    }
}

impl Default for LineDecoder {
    fn default() -> LineDecoder {
        LineDecoder::new(DEFAULT_MAX_EVENT)
    }
}

/// Decodes SSE into [`Event`]s (fields per the HTML living standard: `event`, `data`;
/// comments and other fields skipped; one space after the colon removed).
#[derive(Debug)]
pub struct SseDecoder {
    framer: Framer,
    /// Complete events not yet handed out.
    ready: Bytes,
}

impl SseDecoder {
    /// A decoder refusing events over `max` bytes.
    pub fn new(max: usize) -> SseDecoder {
        SseDecoder {
            framer: Framer::new(max, false),
            ready: Bytes::new(),
        }
    }

    /// Adds bytes from the stream.
    pub fn push(&mut self, data: &[u8]) -> Result<(), EventTooLarge> {
        self.push_bytes(Bytes::copy_from_slice(data))
    }

    /// Adds bytes from the stream without copying them.
    pub fn push_bytes(&mut self, data: Bytes) -> Result<(), EventTooLarge> {
        if let Some(done) = self.framer.push(data)? {
            append(&mut self.ready, done);
        }
        Ok(())
    }

    /// The next complete event, if one has arrived.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if self.ready.is_empty() {
                return None;
            }
            let (event, used) = parse_event(&self.ready);
            let _ = self.ready.split_to(used);
            if event.is_some() {
                return event;
            }
        }
    }

    /// At the end of the stream: an event left without its blank line (lenient, as browsers
    /// are not: some servers end on a single newline).
    pub fn finish(&mut self) -> Option<Event> {
        let rest = self.framer.take_rest()?;
        let mut with_end = BytesMut::with_capacity(rest.len() + 2);
        with_end.extend_from_slice(&rest);
        with_end.extend_from_slice(b"\n\n");
        parse_event(&with_end.freeze()).0
    }
}

/// Parses the first event of `buf` (which holds whole events); returns it (None for an event
/// without data, or only comments) and the bytes used.
fn parse_event(buf: &Bytes) -> (Option<Event>, usize) {
    let mut name = None;
    let mut data: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut pos = 0;
    while pos < buf.len() {
        let end = buf[pos..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(buf.len(), |i| pos + i);
        let mut line = &buf[pos..end];
        let line_start = pos;
        pos = end + 1;
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.is_empty() {
            break;
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(0) => continue,
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            // The empty value is taken from the line's end, so its offset is in `buf`.
            None => (line, &line[line.len()..]),
        };
        let value_at = line_start + (value.as_ptr() as usize - line.as_ptr() as usize);
        let value = buf.slice(value_at..value_at + value.len());
        match field {
            b"event" => name = Some(value),
            b"data" => match (&mut joined, &data) {
                (Some(j), _) => {
                    j.extend_from_slice(b"\n");
                    j.extend_from_slice(&value);
                }
                (None, Some(first)) => {
                    let mut j = BytesMut::with_capacity(first.len() + value.len() + 1);
                    j.extend_from_slice(first);
                    j.extend_from_slice(b"\n");
                    j.extend_from_slice(&value);
                    joined = Some(j);
                }
                (None, None) => data = Some(value),
            },
            _ => {}
        }
    }
    let data = match joined {
        Some(j) => Some(j.freeze()),
        None => data,
    };
    (data.map(|data| Event { name, data }), pos.min(buf.len()))
}

/// Splits newline-delimited JSON (Ollama's streams) into lines, linearly and capped.
#[derive(Debug)]
pub struct LineDecoder {
    framer: Framer,
    ready: Bytes,
}

impl LineDecoder {
    /// A decoder refusing lines over `max` bytes.
    pub fn new(max: usize) -> LineDecoder {
        LineDecoder {
            framer: Framer::new(max, true),
            ready: Bytes::new(),
        }
    }

    /// Adds bytes from the stream.
    pub fn push(&mut self, data: &[u8]) -> Result<(), EventTooLarge> {
        if let Some(done) = self.framer.push(Bytes::copy_from_slice(data))? {
            append(&mut self.ready, done);
        }
        Ok(())
    }

    /// The next complete non-blank line, trimmed.
    pub fn next_line(&mut self) -> Option<Bytes> {
        while !self.ready.is_empty() {
            let end = self
                .ready
                .iter()
                .position(|b| *b == b'\n')
                .map_or(self.ready.len(), |i| i + 1);
            let line = self.ready.split_to(end);
            let trimmed = line.trim_ascii();
            if !trimmed.is_empty() {
                let start = trimmed.as_ptr() as usize - line.as_ptr() as usize;
                return Some(line.slice(start..start + trimmed.len()));
            }
        }
        None
    }

    /// At the end of the stream: a last line without its newline.
    pub fn finish(&mut self) -> Option<Bytes> {
        let rest = self.framer.take_rest()?;
        let trimmed = rest.trim_ascii();
        (!trimmed.is_empty()).then(|| Bytes::copy_from_slice(trimmed))
    }
}

/// The raw events of a buffer holding whole events (as passthrough frames do), each with
/// its closing blank line; a tail without one comes last.
pub fn raw_events(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = first_boundary(rest).unwrap_or(rest.len());
        let (event, tail) = rest.split_at(end);
        rest = tail;
        Some(event)
    })
}

/// The end of the first event in `buf` (after its blank line).
fn first_boundary(buf: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    while let Some(at) = buf[line_start..].iter().position(|b| *b == b'\n') {
        let nl = line_start + at;
        let line = &buf[line_start..nl];
        if line.is_empty() || line == b"\r" {
            return Some(nl + 1);
        }
        line_start = nl + 1;
    }
    None
}

/// The `data:` values of a buffer holding whole events, one per `data:` line (usage taps
/// read passed-through frames with it).
pub fn data_fields(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.split(|b| *b == b'\n').filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let v = line.strip_prefix(b"data:")?;
        Some(v.strip_prefix(b" ").unwrap_or(v))
    })
}

/// Encodes one event: `event: NAME` (when given) and the data, one `data:` line per line.
pub fn encode(name: Option<&str>, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 16 + name.map_or(0, str::len));
    if let Some(n) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b"\n");
    }
    for line in data.split(|b| *b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"\n");
    out.freeze()
}

/// Appends an event to a text buffer (translators build their output as text).
pub fn write_event(out: &mut String, name: Option<&str>, data: &str) {
    if let Some(n) = name {
        out.push_str("event: ");
        out.push_str(n);
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
}

/// A stream translator's step result: the text it completed, or its error. Text completed
/// before the error is not lost: it is returned, and the error is held in `held` for the
/// translator's next feed (or its `finish`).
pub(crate) fn keep_text_before_error(
    held: &mut Option<String>,
    out: String,
    result: Result<(), String>,
) -> Result<String, String> {
    match result {
        Ok(()) => Ok(out),
        Err(e) if out.is_empty() => Err(e),
        Err(e) => {
            *held = Some(e);
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_events(d: &mut SseDecoder) -> Vec<(String, String)> {
        let mut v = Vec::new();
        while let Some(e) = d.next_event() {
            v.push((
                e.name_str().to_string(),
                String::from_utf8(e.data.to_vec()).unwrap(),
            ));
        }
        v
    }

    /// Found by fuzzing (fuzz target `sse`): a line without a colon is a field with an
    /// empty value (`data` alone is an empty data line); reading it panicked.
    #[test]
    fn a_field_without_a_colon_has_an_empty_value() {
        let mut d = SseDecoder::new(1024);
        d.push(b"event: x\ndata\n\nretry\ndata: a\n\nnonsense\n\n")
            .unwrap();
        assert_eq!(
            all_events(&mut d),
            [
                ("x".to_string(), String::new()),
                (String::new(), "a".to_string())
            ]
        );
        let mut d = SseDecoder::new(1024);
        d.push(b"data: a\ndata").unwrap();
        assert_eq!(d.finish().unwrap().data, "a\n");
    }

    #[test]
    fn decodes_events_split_anywhere() {
        let text = "event: message_start\ndata: {\"a\":1}\n\n: comment\n\ndata: x\r\ndata: y\r\n\r\nid: 3\ndata:no-space\n\ndata: [DONE]\n\n";
        let want = vec![
            ("message_start".to_string(), "{\"a\":1}".to_string()),
            (String::new(), "x\ny".to_string()),
            (String::new(), "no-space".to_string()),
            (String::new(), "[DONE]".to_string()),
        ];
        for split in 1..text.len() {
            let mut d = SseDecoder::new(1024);
            let mut got = Vec::new();
            for chunk in text.as_bytes().chunks(split) {
                d.push(chunk).unwrap();
                got.extend(all_events(&mut d));
            }
            assert_eq!(got, want, "split every {split} bytes");
        }
    }

    #[test]
    fn framer_passes_whole_events_without_copying_when_aligned() {
        let mut f = SseFramer::new(1024);
        let frame = Bytes::from_static(b"data: 1\n\ndata: 2\n\n");
        let out = f.push(frame.clone()).unwrap().unwrap();
        assert_eq!(out.as_ptr(), frame.as_ptr());
        assert_eq!(out.len(), frame.len());
        assert_eq!(f.push(Bytes::from_static(b"data: 3\n")).unwrap(), None);
        assert_eq!(
            f.push(Bytes::from_static(b"\ndata: 4")).unwrap().unwrap(),
            Bytes::from_static(b"data: 3\n\n")
        );
        assert_eq!(f.take_rest().unwrap(), Bytes::from_static(b"data: 4"));
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut d = SseDecoder::new(100);
        d.push(b"data: ").unwrap();
        let err = d.push(&[b'x'; 200]).unwrap_err();
        assert_eq!(err.limit, 100);
        let mut f = SseFramer::new(10);
        assert!(f.push(Bytes::from_static(b"data: 0123456789")).is_err());
        // Also when the oversized event arrives whole in one frame, or finishes in a later one.
        let mut f = SseFramer::new(16);
        assert!(f.push(Bytes::from_static(b"data: 1\n\n")).is_ok());
        assert!(f
            .push(Bytes::from_static(b"data: 0123456789abcdef\n\n"))
            .is_err());
        let mut f = SseFramer::new(16);
        assert!(f
            .push(Bytes::from_static(b"data: 01234"))
            .unwrap()
            .is_none());
        assert!(f.push(Bytes::from_static(b"56789abcdef\n\n")).is_err());
    }

    #[test]
    fn one_huge_event_in_small_frames_is_linear() {
        // 8 MB in 1 KB frames: quadratic scanning would take minutes here.
        let mut d = SseDecoder::new(DEFAULT_MAX_EVENT);
        d.push(b"data: ").unwrap();
        let chunk = [b'a'; 1024];
        for _ in 0..8 * 1024 {
            d.push(&chunk).unwrap();
            assert!(d.next_event().is_none());
        }
        d.push(b"\n\n").unwrap();
        assert_eq!(d.next_event().unwrap().data.len(), 8 << 20);
    }

    #[test]
    fn ndjson_lines() {
        let mut d = LineDecoder::new(1024);
        d.push(b"{\"a\":1}\n\n{\"b\"").unwrap();
        assert_eq!(d.next_line().unwrap(), Bytes::from_static(b"{\"a\":1}"));
        assert_eq!(d.next_line(), None);
        d.push(b":2}\r\n{\"c\":3}").unwrap();
        assert_eq!(d.next_line().unwrap(), Bytes::from_static(b"{\"b\":2}"));
        assert_eq!(d.finish().unwrap(), Bytes::from_static(b"{\"c\":3}"));
    }

    #[test]
    fn raw_events_and_data_fields() {
        let buf = b"data: a\n\nevent: e\ndata: b\r\n\r\ndata: c";
        let events: Vec<&[u8]> = raw_events(buf).collect();
        assert_eq!(
            events,
            vec![
                &b"data: a\n\n"[..],
                b"event: e\ndata: b\r\n\r\n",
                b"data: c"
            ]
        );
        let data: Vec<&[u8]> = data_fields(buf).collect();
        assert_eq!(data, vec![&b"a"[..], b"b", b"c"]);
    }

    #[test]
    fn encodes_multi_line_data() {
        assert_eq!(
            &encode(Some("error"), b"a\nb")[..],
            b"event: error\ndata: a\ndata: b\n\n"
        );
        let mut s = String::new();
        write_event(&mut s, None, "{}");
        assert_eq!(s, "data: {}\n\n");
    }
}
