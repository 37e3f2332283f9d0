//! The model over HTTP: a page to draw a digit on and watch the network's answer, and a JSON
//! API to classify uploaded images, both on `infer`'s loading, preprocessing and scoring.
//!
//! [`app`] is the whole service as an axum `Router`; [`server::serve`] runs it within
//! [`server::ConnectionLimits`] until a shutdown signal, then drains it.

#![deny(unsafe_code)]

pub mod api;
pub mod metrics;
pub mod oip;
pub mod queue;
pub mod reload;
pub mod server;
pub mod site;
#[cfg(test)]
mod tests;

use api::{ApiError, AppState};
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The drawing page: one file, no build step, nothing fetched from elsewhere.
const PAGE: &str = include_str!("../static/index.html");
/// The API's description, OpenAPI 3: every route below, checked against it by the tests and
/// by schemathesis in CI.
pub const OPENAPI: &str = include_str!("../static/openapi.json");

/// The service: the page, the API, probes and metrics, JSON errors for unknown paths and wrong
/// methods; security headers on every answer, and a log line per request on stderr.
pub fn app(state: Arc<AppState>, log: LogFormat) -> Router {
    let body_limit = state.limits.body_bytes;
    // The work that costs: bounded in number and in time.
    let bounded = middleware::from_fn_with_state(state.clone(), admit_and_time_out);
    Router::new()
        .route("/", get(page))
        .route("/api/classify", post(api::classify).layer(bounded.clone()))
        .route("/v2", get(oip::server_metadata))
        .route("/v2/health/live", get(oip::live))
        .route("/v2/health/ready", get(oip::ready))
        .route("/v2/models/{name}", get(oip::model_metadata))
        .route("/v2/models/{name}/ready", get(oip::model_ready))
        .route("/v2/models/{name}/infer", post(oip::infer).layer(bounded))
        .route("/api/health", get(api::health))
        .route("/api/model", get(api::model))
        .route("/livez", get(api::live))
        .route("/readyz", get(api::ready))
        .route("/metrics", get(api::metrics))
        .route("/openapi.json", get(openapi))
        .route("/device/{name}", get(site::file))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        // The classify handler reads the raw body under this limit itself, to answer 413 in
        // JSON; the layer raises the multipart reader's own limit (2 MB) to the same figure.
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), check_host))
        .layer(middleware::from_fn(secure_headers))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(axum::Extension(log))
        .with_state(state)
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Admits a request if fewer than the limit are being served (503 with `Retry-After` at
/// once otherwise: a client is better told to come back than left waiting), and answers 408
/// when it takes longer than the timeout, a body that trickles in included.
async fn admit_and_time_out(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = state.in_flight.clone().try_acquire_owned() else {
        state.metrics.reject("busy");
        let mut response =
            ApiError::busy("the server is at capacity; try again shortly").into_response();
        // The body is never read, so the connection cannot carry another request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    };
    let timeout = state.limits.timeout;
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            state.metrics.reject("timeout");
            let message = format!("the request took longer than {} s", timeout.as_secs_f64());
            let mut response = ApiError::new(StatusCode::REQUEST_TIMEOUT, message).into_response();
            // Whatever is left of the body is never read: the connection cannot go on.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// What a browser should and should not do with every answer: no type sniffing, no framing,
/// no caching of answers about someone's image, and the page's script and style only.
async fn secure_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY.clone(),
    );
    response
}

/// Nothing but the page's own script and style (by their hashes), its on-device module from
/// this server (a script, and WebAssembly compiled from it), images from `data:` URLs (the
/// 28×28 preview), and requests to this server.
static CONTENT_SECURITY_POLICY: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
    let policy = format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval' {}; style-src {}; img-src data:; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        inline_hash(PAGE, "script"),
        inline_hash(PAGE, "style")
    );
    HeaderValue::from_str(&policy).expect("a policy of printable ASCII")
});

/// `'sha256-…'` of the first inline `<tag>` element's content in `page`, as CSP hashes it.
fn inline_hash(page: &str, tag: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let open = format!("<{tag}>");
    let content = page
        .split_once(&open)
        .and_then(|(_, rest)| rest.split_once(&format!("</{tag}>")))
        .map_or("", |(content, _)| content);
    let digest = sha2::Sha256::digest(content.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Refuses a request whose `Host` is not a name of this machine, when the server listens on
/// this machine only: a web page elsewhere could otherwise point its own domain name at
/// 127.0.0.1 (DNS rebinding) and drive the API from a visitor's browser.
async fn check_host(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if state.local_only {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !is_local_name(host) {
            state.metrics.reject("host");
            return ApiError::misdirected(format!(
                "`{host}` is not a name of this server, which answers to localhost only"
            ))
            .into_response();
        }
    }
    next.run(request).await
}

/// Whether `host` (a `Host` header: a name or address, maybe with a port) names this machine.
fn is_local_name(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// How each request is logged on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `ID METHOD PATH STATUS MILLISECONDS ms`.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Numbers the requests that came without an id of their own.
static NEXT_REQUEST_ID: AtomicU64 = AtomicU64::new(1);

/// Gives each request an id (the client's `x-request-id` when it is short and printable),
/// sends it back, counts the request in the metrics and logs it, on a log that may fail
/// without failing the request.
async fn observe(
    State(state): State<Arc<AppState>>,
    axum::Extension(format): axum::Extension<LogFormat>,
    request: Request,
    next: Next,
) -> Response {
    let id = request_id(&request);
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let started = Instant::now();
    state.metrics.in_flight.inc();
    let mut response = next.run(request).await;
    state.metrics.in_flight.dec();
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    let metrics = &state.metrics;
    let labels = metrics::RequestLabels {
        route: route.clone(),
        status,
    };
    metrics.requests.get_or_create(&labels).inc();
    let route_labels = metrics::RouteLabels { route };
    metrics
        .latency
        .get_or_create(&route_labels)
        .observe(seconds);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let millis = seconds * 1e3;
    let line = match format {
        LogFormat::Text => format!("{id} {method} {path} {status} {millis:.1} ms"),
        LogFormat::Json => serde_json::json!({
            "id": id, "method": method.as_str(), "path": path, "status": status, "ms": millis,
        })
        .to_string(),
    };
    // A full disk or a log reader that went away must not cost anyone their answer.
    infer::console::note(line);
    response
}

/// The client's `x-request-id` if it is at most 64 printable ASCII characters, else a number.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(
            || NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed).to_string(),
            str::to_string,
        )
}

#[cfg(test)]
mod header_tests {
    use super::*;

    #[test]
    fn only_names_of_this_machine_are_local() {
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1:9",
            "127.1.2.3",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(is_local_name(host), "{host}");
        }
        for host in [
            "",
            "evil.example",
            "evil.example:8080",
            "10.0.0.1",
            "[2001:db8::1]:80",
        ] {
            assert!(!is_local_name(host), "{host}");
        }
    }

    #[test]
    fn the_policy_names_the_page_own_script_and_style() {
        let policy = CONTENT_SECURITY_POLICY.to_str().unwrap();
        // Scripts: the page's own, and from this server the on-device module, which may be
        // compiled to WebAssembly; never inline code of anyone else's, nor `eval`.
        assert!(
            policy.contains("script-src 'self' 'wasm-unsafe-eval' 'sha256-"),
            "{policy}"
        );
        assert!(policy.contains("style-src 'sha256-"), "{policy}");
        let unsafe_sources = policy.replace("'wasm-unsafe-eval'", "");
        assert!(!unsafe_sources.contains("unsafe"), "{policy}");
        assert_eq!(inline_hash("<b>x</b>", "b"), inline_hash("<i>x</i>", "i"));
    }
}
