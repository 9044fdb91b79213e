//! A fault-injecting OpenAI-compatible upstream for resilience tests: answers, fails with a
//! status, hangs, cuts streams, reports a health status, and can be killed (listener and
//! every open connection) and restarted on the same port.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::routing::{get, post};
use bytes::Bytes;
use http::StatusCode;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{json, Value};
use tokio::task::AbortHandle;

/// What the upstream does with chat requests.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Answer normally.
    Ok,
    /// Answer with this status (and `Retry-After` when given).
    Status(u16, Option<&'static str>),
    /// Never answer.
    Hang,
    /// Fail the next N requests with the status, then answer normally.
    FailNext(u32, u16),
    /// Stream K chunks, then break the connection.
    CutAfter(usize),
}

/// Shared state of one fault-injecting upstream.
pub struct Faulty {
    pub name: &'static str,
    pub hits: AtomicUsize,
    pub probes: AtomicUsize,
    pub mode: Mutex<Mode>,
    pub health: Mutex<u16>,
}

impl Faulty {
    pub fn new(name: &'static str) -> Arc<Faulty> {
        Arc::new(Faulty {
            name,
            hits: AtomicUsize::new(0),
            probes: AtomicUsize::new(0),
            mode: Mutex::new(Mode::Ok),
            health: Mutex::new(200),
        })
    }
    pub fn set(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }
    pub fn set_health(&self, status: u16) {
        *self.health.lock().unwrap() = status;
    }
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn reply(name: &str, model: &Value) -> axum::response::Response {
    axum::response::IntoResponse::into_response(axum::Json(json!({
        "id": "chatcmpl-f", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": name}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    })))
}

async fn chat(State(f): State<Arc<Faulty>>, body: Bytes) -> axum::response::Response {
    f.hits.fetch_add(1, Ordering::SeqCst);
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let stream = v["stream"].as_bool().unwrap_or(false);
    let mode = {
        let mut m = f.mode.lock().unwrap();
        let now = m.clone();
        if let Mode::FailNext(n, s) = now {
            *m = if n <= 1 {
                Mode::Ok
            } else {
                Mode::FailNext(n - 1, s)
            };
            Mode::Status(s, None)
        } else {
            now
        }
    };
    match mode {
        Mode::Ok if stream => {
            let name = f.name;
            let chunks = vec![
                Bytes::from(format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{name}\"}}}}]}}\n\n")),
                Bytes::from_static(b"data: [DONE]\n\n"),
            ];
            let s = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, Infallible>));
            (
                [("content-type", "text/event-stream")],
                Body::from_stream(s),
            )
                .into_response_()
        }
        Mode::Ok => reply(f.name, &v["model"]),
        Mode::Status(s, _) | Mode::FailNext(_, s) => {
            let retry_after = if let Mode::Status(_, r) = mode {
                r
            } else {
                None
            };
            let mut r = (StatusCode::from_u16(s).unwrap(), format!(r#"{{"error":{{"message":"{} failed with {s}","type":"x","param":null,"code":null}}}}"#, f.name)).into_response_();
            r.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            if let Some(ra) = retry_after {
                r.headers_mut().insert("retry-after", ra.parse().unwrap());
            }
            r
        }
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            reply(f.name, &v["model"])
        }
        Mode::CutAfter(k) => {
            let s = futures_util::stream::unfold(0usize, move |i| async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                if i < k {
                    Some((Ok(Bytes::from(format!("data: {{\"n\":{i}}}\n\n"))), i + 1))
                } else if i == k {
                    Some((Err(std::io::Error::other("cut")), i + 1))
                } else {
                    None
                }
            });
            (
                [("content-type", "text/event-stream")],
                Body::from_stream(s),
            )
                .into_response_()
        }
    }
}

trait IntoResponseExt {
    fn into_response_(self) -> axum::response::Response;
}
impl<T: axum::response::IntoResponse> IntoResponseExt for T {
    fn into_response_(self) -> axum::response::Response {
        self.into_response()
    }
}

fn app(f: Arc<Faulty>) -> axum::Router {
    axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route(
            "/health",
            get(|State(f): State<Arc<Faulty>>| async move {
                f.probes.fetch_add(1, Ordering::SeqCst);
                StatusCode::from_u16(*f.health.lock().unwrap()).unwrap()
            }),
        )
        .route(
            "/v1/models",
            get(|| async {
                axum::Json(json!({"object": "list", "data": [{"id": "m", "object": "model"}]}))
            }),
        )
        .with_state(f)
}

/// A running upstream that can be killed and restarted on the same port.
pub struct Killable {
    pub addr: SocketAddr,
    pub faulty: Arc<Faulty>,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Killable {
    pub async fn start(faulty: Arc<Faulty>) -> Killable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let k = Killable {
            addr,
            faulty,
            tasks: Default::default(),
        };
        k.serve(listener);
        k
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let tasks = self.tasks.clone();
        let service = TowerToHyperService::new(app(self.faulty.clone()));
        let accept = tokio::spawn({
            let tasks = tasks.clone();
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let service = service.clone();
                    let conn = tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                    tasks.lock().unwrap().push(conn.abort_handle());
                }
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
    }

    /// Closes the listener and every open connection, as a crashed process would.
    pub fn kill(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&self) {
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 100 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("cannot rebind {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }
}
