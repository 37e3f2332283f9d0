//! The model over HTTP: a page to draw a digit on and watch the network's answer, and a JSON
//! API to classify uploaded images, both on `infer`'s loading, preprocessing and scoring.
//!
//! [`app`] is the whole service as an axum `Router`; [`serve`] runs it until a shutdown
//! signal, letting requests in flight finish.

pub mod api;
pub mod batcher;

use api::AppState;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::{Html, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

/// The drawing page: one file, no build step, nothing fetched from elsewhere.
const PAGE: &str = include_str!("../static/index.html");

/// Largest body accepted by default: 8 MB, more than any photo a phone takes.
pub const DEFAULT_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// The service: the page, the API, JSON errors for unknown paths and wrong methods, and a log
/// line per request on stderr.
pub fn app(state: AppState) -> Router {
    let body_limit = state.body_limit;
    Router::new()
        .route("/", get(page))
        .route("/api/classify", post(api::classify))
        .route("/api/health", get(api::health))
        .route("/api/model", get(api::model))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        // The classify handler reads the raw body under this limit itself, to answer 413 in
        // JSON; the layer raises the multipart reader's own limit (2 MB) to the same figure.
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(log_request))
        .with_state(Arc::new(state))
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `METHOD PATH STATUS MILLISECONDS ms` on stderr, for every request.
async fn log_request(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let millis = started.elapsed().as_secs_f64() * 1e3;
    eprintln!(
        "{method} {path} {} {millis:.1} ms",
        response.status().as_u16()
    );
    response
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and lets the
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Answers go out at once: with Nagle's algorithm a small answer can wait for the client's
    // delayed acknowledgement, 40 ms per request on Linux.
    let listener = listener.tap_io(|connection| {
        let _ = connection.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
