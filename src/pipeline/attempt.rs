//! The one attempt loop, for every operation: select a backend by the strategy, take its
//! breaker permit, wait out the backoff, prepare the body for it, exchange, and feed the
//! outcome to the breaker, retries and metrics. It never looks at the client's protocol
//! or the backend's type: what a backend speaks comes from `Backend::wire_for`, and the
//! body for it from `prepare`.

use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use tokio::time::Instant;

use super::body::Response;
use super::{exchange, prepare, usage, Call, Core};
use crate::config::SelectionStrategy;
use crate::error::ProxyError;
use crate::http::{X_CONTINUUM_BACKEND, X_CONTINUUM_MODEL};
use crate::metrics::Served;
use crate::resilience::{retry, Permit};
use crate::routing::strategy::{Affinity, Choice, HashKey};
use crate::routing::{Route, Target};

/// Says when a reasoning level was clamped or dropped for the backend.
static X_CONTINUUM_REASONING_EFFORT: HeaderName =
    HeaderName::from_static("x-continuum-reasoning-effort");

/// Says why the backend was chosen (with `server.expose_backend_header`).
static X_CONTINUUM_ROUTE_REASON: HeaderName = HeaderName::from_static("x-continuum-route-reason");

/// The `x-continuum-route-reason` value: the strategy's reason, then `attempt=N` after a
/// retry and `fallback` when the model is a fallback of the one asked for.
fn route_reason(
    reason: &crate::routing::strategy::Reason,
    attempt: u32,
    fallback: bool,
) -> HeaderValue {
    let mut text = reason.header_value();
    if attempt > 1 {
        text.push_str(&format!("; attempt={attempt}"));
    }
    if fallback {
        text.push_str("; fallback");
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("strategy"))
}

/// How one model is to be served.
pub struct ModelPlan<'a> {
    /// The model's route.
    pub route: &'a Route,
    /// Its selection strategy.
    pub strategy: SelectionStrategy,
    /// The hashing strategies' key.
    pub key: HashKey,
    /// Streams hand failures to a continuation instead of ending with an error event.
    pub continues: bool,
    /// The model is a fallback of the one the client asked for.
    pub fallback: bool,
}

/// Backends already tried for this request (a bit set; indices past 127 are not tracked,
/// which only means such a backend may be retried first).
#[derive(Default)]
struct Tried(u128);

impl Tried {
    fn contains(&self, i: usize) -> bool {
        i < 128 && self.0 & (1 << i) != 0
    }
    fn insert(&mut self, i: usize) {
        if i < 128 {
            self.0 |= 1 << i;
        }
    }
}

/// Frees a half-open circuit's trial slot if the attempt ends without a verdict.
struct TrialGuard<'a> {
    backend: &'a crate::backend::Backend,
    permit: Permit,
    recorded: bool,
}

impl Drop for TrialGuard<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.backend.state.breaker.release(self.permit);
        }
    }
}

/// Why no backend could be picked on this turn of the loop.
#[derive(Default)]
struct Passed {
    /// Over its own rate limit: (backend, decision).
    limited: Option<(usize, crate::ratelimit::Decision)>,
    /// At its `max_concurrent`.
    saturated: bool,
    /// Does not serve the operation.
    incompatible: Option<usize>,
}

/// Picks the next target: an untried usable backend first, else any usable one (`again`).
fn select<'r>(
    core: &Core,
    plan: &'r ModelPlan<'_>,
    call: &Call,
    tried: &Tried,
    passed: &mut Passed,
) -> Option<(Choice<'r>, Option<Permit>, bool)> {
    let backends = &core.backends;
    let now = Instant::now();
    let mut permit = None;
    let mut usable = |t: &Target| {
        let b = &backends[t.backend];
        if call.pinned().is_some_and(|p| p != b.name()) {
            return false;
        }
        if b.wire_for(call.op, &t.upstream_model).is_none() {
            passed.incompatible = Some(t.backend);
            return false;
        }
        // A backend at its `max_concurrent` is passed over.
        if b.config
            .max_concurrent
            .is_some_and(|max| b.state.in_flight() >= max)
        {
            passed.saturated = true;
            return false;
        }
        permit = b.state.try_acquire(now);
        let Some(p) = permit else {
            return false;
        };
        // A backend over its own rate limit (`rate_limiting.limits.per_backend`) is passed
        // over like an unavailable one; if that leaves none, the answer is 429.
        let over = core
            .limits
            .as_ref()
            .and_then(|l| l.admit_backend(t.backend, now.into_std()));
        if let Some(d) = over {
            b.state.breaker.release(p);
            permit = None;
            passed.limited = Some((t.backend, d));
            return false;
        }
        true
    };
    let route = plan.route;
    let affinity = Affinity {
        key: plan.key,
        prompt: (plan.strategy == SelectionStrategy::CacheAware).then(|| call.prompt_blocks()),
        settings: &core.config.routing,
    };
    if let Some(c) = route.select(plan.strategy, affinity, backends, |t| {
        !tried.contains(t.backend) && usable(t)
    }) {
        return Some((c, permit, false));
    }
    let c = route.select(plan.strategy, affinity, backends, &mut usable)?;
    Some((c, permit, true))
}

/// The 503 when no backend of `route` may take the call, saying why for each one.
fn no_healthy(core: &Core, call: &Call, route: &Route) -> ProxyError {
    let now = Instant::now();
    let mut reasons: Vec<String> = Vec::new();
    for t in route.targets() {
        let b = &core.backends[t.backend];
        if call.pinned().is_some_and(|p| p != b.name()) {
            continue;
        }
        if let Some(why) = b.state.unavailable(now) {
            let line = format!("backend '{}' {why}", b.name());
            if !reasons.contains(&line) {
                reasons.push(line);
            }
        }
    }
    ProxyError::NoHealthyBackend {
        model: call.routing.model.clone(),
        reasons,
    }
}

/// The answer when no backend is left to try.
fn none_left(
    core: &Core,
    call: &Call,
    route: &Route,
    passed: Passed,
    previous: Option<Result<Response, ProxyError>>,
) -> Result<Response, ProxyError> {
    if let (Some(b), None) = (passed.incompatible, &previous) {
        let b = &core.backends[b];
        return Err(ProxyError::InvalidField {
            param: "model",
            message: format!(
                "backend '{}' (type {}) does not serve {}; route this model to a backend that does",
                b.name(),
                b.config.kind.as_str(),
                call.endpoint
            ),
        });
    }
    if passed.saturated && previous.is_none() {
        return Err(ProxyError::Overloaded(
            "every backend of this model is at its max_concurrent",
        ));
    }
    if let Some((b, decision)) = passed.limited {
        core.metrics.rate_limited(core.shard);
        return Err(ProxyError::RateLimited {
            subject: format!("backend '{}'", core.backends[b].name()),
            decision,
        });
    }
    // Breakers may open while we retry: then the last real failure is the answer.
    previous.unwrap_or_else(|| Err(no_healthy(core, call, route)))
}

/// Serves one model: pick a backend by the strategy, retry failures (on another backend
/// first, then with backoff), and feed every outcome to the backend's breaker and latency.
pub async fn serve_model(
    core: &Core,
    plan: ModelPlan<'_>,
    call: &Call,
) -> Result<Response, ProxyError> {
    let backends = &core.backends;
    let mut tried = Tried::default();
    let mut attempt = 0u32;
    let mut retry_after = None;
    let mut previous: Option<Result<Response, ProxyError>> = None;
    loop {
        attempt += 1;
        let mut passed = Passed::default();
        let Some((choice, permit, again)) = select(core, &plan, call, &tried, &mut passed) else {
            return none_left(core, call, plan.route, passed, previous);
        };
        let target = choice.target;
        tried.insert(target.backend);
        let backend = &backends[target.backend];
        // From here on a cancelled request gives its half-open trial slot back.
        let mut guard = TrialGuard {
            backend,
            permit: permit.unwrap_or(Permit::Free),
            recorded: false,
        };
        let policy = backend
            .config
            .retry_override
            .as_ref()
            .unwrap_or(&core.config.retry);
        let deadline = call.deadline(core, &target.upstream_model);
        if again && attempt > 1 {
            let wait = retry::wait_before_retry(policy, attempt - 1, retry_after);
            tokio::time::sleep_until((Instant::now() + wait).min(deadline)).await;
        }
        // One deadline for the whole call: no attempt starts once it has passed.
        if attempt > 1 && Instant::now() >= deadline {
            return previous.unwrap_or_else(|| Err(no_healthy(core, call, plan.route)));
        }
        tracing::debug!(request_id = call.id.to_str().unwrap_or(""), model = %call.routing.model, backend = backend.name(), attempt, "routing");
        let prepared = prepare::prepare(core, call, backend, target, plan.strategy)?;
        let replies_in = prepared.replies_in;
        let outcome = exchange_once(core, call, backend, target, &plan, prepared.exchange).await;
        let ok = match &outcome {
            Ok(resp) => !resp.status().is_server_error(),
            Err(_) => false,
        };
        backend
            .state
            .breaker
            .record(guard.permit, ok, Instant::now());
        guard.recorded = true;
        let retry = attempt < policy.max_attempts
            && match &outcome {
                Ok(resp) => policy
                    .retryable_status_codes
                    .contains(&resp.status().as_u16()),
                Err(e) => e.is_retryable(),
            };
        if !retry {
            let mut resp = outcome?;
            let served = Served {
                backend: backend.clone(),
                model: target.upstream_model.clone(),
            };
            if let Some(note) = prepared.effort {
                core.metrics
                    .reasoning_adjusted(core.shard, &served, note.requested, note.applied);
                resp.headers_mut()
                    .insert(X_CONTINUUM_REASONING_EFFORT.clone(), note.header);
            }
            for (name, value) in prepared.headers {
                resp.headers_mut().insert(name, value);
            }
            ensure_retry_after(&mut resp);
            resp.extensions_mut().insert(served);
            resp.extensions_mut().insert(prepared.replies_in);
            if core.config.server.expose_backend_header {
                let headers = resp.headers_mut();
                headers.insert(X_CONTINUUM_BACKEND.clone(), backend.name_header.clone());
                if let Some(model) = &target.model_header {
                    headers.insert(X_CONTINUUM_MODEL.clone(), model.clone());
                }
                headers.insert(
                    X_CONTINUUM_ROUTE_REASON.clone(),
                    route_reason(&choice.reason, attempt, plan.fallback),
                );
            }
            return Ok(resp);
        }
        retry_after = match &outcome {
            Ok(resp) => retry::retry_after(resp.headers()),
            Err(_) => None,
        };
        core.metrics.retry(core.shard);
        match &outcome {
            Ok(resp) => tracing::info!(
                request_id = call.id.to_str().unwrap_or(""),
                backend = backend.name(),
                status = resp.status().as_u16(),
                attempt,
                "retrying"
            ),
            Err(e) => {
                tracing::info!(request_id = call.id.to_str().unwrap_or(""), backend = backend.name(), error = %e, attempt, "retrying")
            }
        }
        previous = Some(outcome.map(|mut resp| {
            ensure_retry_after(&mut resp);
            resp.extensions_mut().insert(replies_in);
            if core.config.server.expose_backend_header {
                resp.headers_mut()
                    .insert(X_CONTINUUM_BACKEND.clone(), backend.name_header.clone());
            }
            resp
        }));
    }
}

/// A backend's 429 reaches the client with an integer `Retry-After` (1 s when the
/// backend gave none), as the router's own 429s do.
fn ensure_retry_after(resp: &mut Response) {
    if resp.status() == http::StatusCode::TOO_MANY_REQUESTS
        && !resp.headers().contains_key(http::header::RETRY_AFTER)
    {
        resp.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
    }
}

/// Sends one prepared request and applies the usage fix it asked for.
async fn exchange_once(
    core: &Core,
    call: &Call,
    backend: &Arc<crate::backend::Backend>,
    target: &Target,
    plan: &ModelPlan<'_>,
    prepared: prepare::ForExchange,
) -> Result<Response, ProxyError> {
    let prepare::ForExchange {
        request,
        wire,
        decode,
        usage: fix,
        count_cache,
    } = prepared;
    let spec = exchange::Spec {
        model: &target.upstream_model,
        stream: call.stream(),
        count_cache,
        continue_on_failure: plan.continues,
        decode,
        id: call.id.to_str().unwrap_or("continuum"),
        images: call.op.makes_images(),
        deadline: call.deadline(core, &target.upstream_model),
    };
    let outcome = exchange::exchange(core, backend, wire, request, spec).await;
    match (outcome, fix) {
        (Ok(resp), Some(fix)) => Ok(usage::fix_usage(resp, fix).await),
        (outcome, _) => outcome,
    }
}

/// A reasoning level changed for the backend: the header to send and the levels
/// (requested, applied) for the metric.
pub struct EffortNote {
    /// `x-continuum-reasoning-effort`'s value.
    pub header: HeaderValue,
    /// The level asked for.
    pub requested: &'static str,
    /// The level applied (`none` when dropped).
    pub applied: &'static str,
}
