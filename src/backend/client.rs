//! The one HTTP client every backend shares: pooled keep-alive connections, TCP_NODELAY,
//! HTTPS through rustls with the Mozilla root set. Requests carry a whole body
//! (`Full<Bytes>`, the usual case, no allocation) or a streamed one (an upload spooled to
//! disk, sent without being held in memory).

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::combinators::BoxBody;
use http_body_util::{Either, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// A request body sent upstream: whole, or streamed.
pub type UpstreamBody = Either<Full<Bytes>, BoxBody<Bytes, std::io::Error>>;

/// The shared upstream client.
#[derive(Clone, Debug)]
pub struct HttpClient(Client<hyper_rustls::HttpsConnector<HttpConnector>, UpstreamBody>);

impl HttpClient {
    /// Sends a request with a whole body.
    pub fn request(&self, req: Request<Full<Bytes>>) -> ResponseFuture {
        self.0.request(req.map(Either::Left))
    }

    /// Sends a request whose body is whole or streamed.
    pub fn send(&self, req: Request<UpstreamBody>) -> ResponseFuture {
        self.0.request(req)
    }
}

/// Builds the client: `pool_size` idle connections per host, `connect_timeout` for TCP.
pub fn build_client(pool_size: usize, connect_timeout: Duration) -> HttpClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    HttpClient(
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(pool_size)
            // A backend's bytes are read only as fast as its client takes them: a small read
            // buffer is all a stalled client's stream holds here (about 0.4 MB less each
            // than hyper's ~400 KB default grown full).
            .http1_max_buf_size(64 * 1024)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https),
    )
}
