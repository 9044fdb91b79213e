//! The body of a streamed response: the backend's bytes pass through frame by frame,
//! unbuffered, while the chunk-interval and total deadlines are watched. A stream that
//! breaks or stalls after its first byte ends with an explicit error event, never a clean
//! `[DONE]`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use crate::backend::Backend;
use crate::error::ProxyError;
use crate::protocol::codec::ChunkTranslator;
use crate::protocol::errors::{openai_stream_error_event, stream_error_event};
use crate::protocol::sse::SseFramer;
use crate::resilience::InFlight;

/// Ends open streams with an error event when the shutdown grace time is over (each
/// worker has its own switch). A flag read on every poll, and a watch a waiting stream is
/// woken by.
#[derive(Clone, Debug)]
pub struct StreamCut(Option<(Arc<AtomicBool>, watch::Receiver<bool>)>);

/// Flips a worker's [`StreamCut`].
#[derive(Debug)]
pub struct CutSwitch(Arc<AtomicBool>, watch::Sender<bool>);

impl CutSwitch {
    /// Ends every stream of this switch's cut now.
    pub fn cut(&self) {
        self.0.store(true, Ordering::Release);
        let _ = self.1.send(true);
    }
}

impl StreamCut {
    /// A switch and the cut it flips.
    pub fn new() -> (CutSwitch, StreamCut) {
        let flag = Arc::new(AtomicBool::new(false));
        let (tx, rx) = watch::channel(false);
        (CutSwitch(flag.clone(), tx), StreamCut(Some((flag, rx))))
    }

    /// A cut that never comes (a router mounted inside another app).
    pub fn never() -> StreamCut {
        StreamCut(None)
    }

    fn waiter(&self) -> Option<Waiter> {
        let (flag, rx) = self.0.clone()?;
        let mut rx = rx;
        let wait: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
            if rx.wait_for(|c| *c).await.is_err() {
                std::future::pending::<()>().await;
            }
        });
        Some(Waiter { flag, wait })
    }
}

/// One stream's view of its [`StreamCut`].
struct Waiter {
    flag: Arc<AtomicBool>,
    wait: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Waiter {
    /// Whether the cut came; registers for a wake-up when `register` (the stream is about
    /// to wait) and it has not.
    fn came(&mut self, cx: &mut Context<'_>, register: bool) -> bool {
        if self.flag.load(Ordering::Acquire) {
            return true;
        }
        register && self.wait.as_mut().poll(cx).is_ready()
    }
}

/// A backend's streamed body with deadlines.
pub struct GuardedStream {
    /// The shutdown's end of open streams (`None`: never).
    cut: Option<Waiter>,
    first: Option<Frame<Bytes>>,
    inner: super::body::Body,
    timer: Pin<Box<Sleep>>,
    chunk_interval: Duration,
    last_chunk: Instant,
    started: Instant,
    total_deadline: Instant,
    backend: Arc<Backend>,
    _in_flight: InFlight,
    count_cache: bool,
    /// Passes only whole SSE events (SSE streams); Ollama's NDJSON is left as it comes.
    framer: Option<SseFramer>,
    /// The stream's wire.
    wire: crate::pipeline::op::Wire,
    /// Hand a failure to the wrapping [`super::continuation::ContinuingStream`] as an
    /// error instead of ending with an error event.
    continue_on_failure: bool,
    done: bool,
}

/// The deadlines a stream is held to.
pub struct StreamLimits {
    /// Longest silence between two chunks.
    pub chunk_interval: Duration,
    /// When the attempt started.
    pub started: Instant,
    /// Longest whole stream, from `started`.
    pub total: Duration,
}

/// What a stream does besides passing bytes.
pub struct StreamMode {
    /// Count prompt-cache usage (PrefixAwareHash routes).
    pub count_cache: bool,
    /// Yield a failure as an error (for a wrapper) instead of ending with an error event.
    pub continue_on_failure: bool,
    /// The stream is SSE: pass only whole events.
    pub sse: bool,
    /// Largest event held (`server.max_stream_event_size`).
    pub max_event: usize,
    /// The stream's wire (the shape of the error event that ends a broken one).
    pub wire: crate::pipeline::op::Wire,
    /// The shutdown's end of open streams.
    pub cut: StreamCut,
}

impl GuardedStream {
    /// Wraps `inner`, whose `first` frame was already read.
    pub fn new(
        first: Option<Frame<Bytes>>,
        inner: super::body::Body,
        limits: StreamLimits,
        backend: Arc<Backend>,
        in_flight: InFlight,
        mode: StreamMode,
    ) -> GuardedStream {
        let StreamLimits {
            chunk_interval,
            started,
            total,
        } = limits;
        let StreamMode {
            count_cache,
            continue_on_failure,
            sse,
            max_event,
            wire,
            cut,
        } = mode;
        let now = Instant::now();
        let total_deadline = started + total;
        let deadline = (now + chunk_interval).min(total_deadline);
        GuardedStream {
            cut: cut.waiter(),
            done: first.is_none() && inner.is_end_stream(),
            first,
            inner,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            chunk_interval,
            last_chunk: now,
            started,
            total_deadline,
            backend,
            _in_flight: in_flight,
            count_cache,
            continue_on_failure,
            framer: sse.then(|| SseFramer::new(max_event)),
            wire,
        }
    }

    fn count(&self, frame: &Frame<Bytes>) {
        if self.count_cache {
            if let Some(data) = frame.data_ref() {
                self.backend.state.cache.count_sse(data);
            }
        }
    }

    /// For SSE, passes on only complete events (see [`crate::protocol::sse::SseFramer`]) so
    /// an error event never lands in the middle of a half-sent one; frames that end on an
    /// event boundary (the usual case) pass through untouched.
    fn whole_events(&mut self, frame: Frame<Bytes>) -> Result<Option<Frame<Bytes>>, ProxyError> {
        let Some(framer) = self.framer.as_mut() else {
            return Ok(Some(frame));
        };
        let data = match frame.into_data() {
            Ok(d) => d,
            Err(other) => return Ok(Some(other)),
        };
        match framer.push(data) {
            Ok(done) => Ok(done.map(Frame::data)),
            Err(e) => Err(ProxyError::BadUpstream {
                backend: self.backend.name().to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// The shutdown grace time is over: the stream ends with an error event (or hands the
    /// error to its wrapper), which is no fault of the backend's.
    fn cut_off(&mut self) -> Poll<Option<Result<Frame<Bytes>, ProxyError>>> {
        if let Some(f) = self.framer.as_mut() {
            f.take_rest();
        }
        self.done = true;
        let err = ProxyError::ShuttingDown;
        if self.continue_on_failure {
            return Poll::Ready(Some(Err(err)));
        }
        Poll::Ready(Some(Ok(Frame::data(stream_error_event(self.wire, &err)))))
    }

    fn fail(&mut self, err: ProxyError) -> Poll<Option<Result<Frame<Bytes>, ProxyError>>> {
        // A half-sent event is dropped rather than glued to the error event.
        if let Some(f) = self.framer.as_mut() {
            f.take_rest();
        }
        tracing::warn!(backend = self.backend.name(), error = %err, "stream ended early");
        // Counts against a closed circuit; a half-open trial was judged by its headers.
        let free = crate::resilience::Permit::Free;
        self.backend
            .state
            .breaker
            .record(free, false, Instant::now());
        self.done = true;
        if self.continue_on_failure {
            return Poll::Ready(Some(Err(err)));
        }
        Poll::Ready(Some(Ok(Frame::data(stream_error_event(self.wire, &err)))))
    }
}

impl Body for GuardedStream {
    type Data = Bytes;
    type Error = ProxyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ProxyError>>> {
        let this = self.get_mut();
        if let Some(frame) = this.first.take() {
            match this.whole_events(frame) {
                Ok(Some(frame)) => {
                    this.count(&frame);
                    return Poll::Ready(Some(Ok(frame)));
                }
                Ok(None) => {}
                Err(e) => return this.fail(e),
            }
        }
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if this.cut.as_mut().is_some_and(|c| c.came(cx, false)) {
                return this.cut_off();
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    this.last_chunk = Instant::now();
                    match this.whole_events(frame) {
                        Ok(Some(frame)) => {
                            this.count(&frame);
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        Ok(None) => {}
                        Err(e) => return this.fail(e),
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    let reason = match e {
                        ProxyError::BadUpstream { reason, .. } => reason,
                        other => other.to_string(),
                    };
                    let err = ProxyError::BadUpstream {
                        backend: this.backend.name().to_string(),
                        reason: format!("the stream broke off: {reason}"),
                    };
                    return this.fail(err);
                }
                Poll::Ready(None) => {
                    this.done = true;
                    // What the backend left unfinished at a clean end goes out as it was.
                    let rest = this.framer.as_mut().and_then(SseFramer::take_rest);
                    return Poll::Ready(rest.map(|b| Ok(Frame::data(b))));
                }
                Poll::Pending => break,
            }
        }
        // Waiting for the backend: wake up for the shutdown's cut too.
        if this.cut.as_mut().is_some_and(|c| c.came(cx, true)) {
            return this.cut_off();
        }
        // Nothing from the backend: check the deadlines. The timer is moved forward lazily,
        // only when it fires before the real deadline.
        loop {
            let chunk_deadline = this.last_chunk + this.chunk_interval;
            let deadline = chunk_deadline.min(this.total_deadline);
            if this.timer.deadline() < deadline {
                this.timer.as_mut().reset(deadline);
            }
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if Instant::now() >= deadline {
                let (what, after) = if deadline == this.total_deadline {
                    ("end of stream", this.total_deadline - this.started)
                } else {
                    ("next chunk", this.chunk_interval)
                };
                let err = ProxyError::Timeout {
                    backend: this.backend.name().to_string(),
                    what,
                    after,
                };
                return this.fail(err);
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.first.is_none()
    }
}

/// A backend's non-OpenAI stream (Ollama NDJSON, Anthropic events), translated to OpenAI
/// chunks. The `GuardedStream` below yields its failures as errors; they end this stream
/// with an error event, or are handed on as errors when a `mid_stream: continue` wrapper
/// is above. A stream that ends before its proper end is a failure too.
pub struct TranslatedSse {
    inner: GuardedStream,
    translator: Box<dyn ChunkTranslator>,
    backend: String,
    pass_errors: bool,
    done: bool,
}

impl TranslatedSse {
    /// Wraps `inner` (a guarded stream in continue-on-failure mode).
    pub fn new(
        inner: GuardedStream,
        translator: Box<dyn ChunkTranslator>,
        backend: &str,
        pass_errors: bool,
    ) -> TranslatedSse {
        TranslatedSse {
            inner,
            translator,
            backend: backend.to_string(),
            pass_errors,
            done: false,
        }
    }

    fn end_with(&mut self, err: ProxyError) -> Poll<Option<Result<Frame<Bytes>, ProxyError>>> {
        self.done = true;
        if self.pass_errors {
            return Poll::Ready(Some(Err(err)));
        }
        Poll::Ready(Some(Ok(Frame::data(openai_stream_error_event(&err)))))
    }
}

impl Body for TranslatedSse {
    type Data = Bytes;
    type Error = ProxyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ProxyError>>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    match this.translator.finish() {
                        Ok(text) if !text.is_empty() => {
                            // Text still due; the next poll sees the end again.
                            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(text)))));
                        }
                        Ok(_) => {}
                        Err(reason) => {
                            let err = ProxyError::BadUpstream {
                                backend: this.backend.clone(),
                                reason,
                            };
                            return this.end_with(err);
                        }
                    }
                    if this.translator.is_done() {
                        this.done = true;
                        return Poll::Ready(None);
                    }
                    let err = ProxyError::BadUpstream {
                        backend: this.backend.clone(),
                        reason: "the stream ended before it was complete".into(),
                    };
                    return this.end_with(err);
                }
                Poll::Ready(Some(Err(e))) => return this.end_with(e),
                Poll::Ready(Some(Ok(frame))) => {
                    let Some(data) = frame.data_ref() else {
                        continue;
                    };
                    match this.translator.feed(data) {
                        Ok(text) if text.is_empty() => continue,
                        Ok(text) => return Poll::Ready(Some(Ok(Frame::data(Bytes::from(text))))),
                        Err(reason) => {
                            let err = ProxyError::BadUpstream {
                                backend: this.backend.clone(),
                                reason,
                            };
                            return this.end_with(err);
                        }
                    }
                }
            }
        }
    }
}
