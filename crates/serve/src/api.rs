//! The JSON API: `POST /api/classify`, `GET /api/health`, `GET /api/model`, the probes and
//! metrics operators read, and JSON errors with the right status for everything else.

use crate::metrics::{self, Metrics};
use crate::queue::{InferenceQueue, Unanswered};
use axum::Json;
use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use infer::{ModelInfo, Prediction};
use serde_json::{Value, json};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// What every request can reach.
pub struct AppState {
    /// The network, behind its batching queue.
    pub queue: InferenceQueue,
    /// What `/api/model` says; replaced when the model is reloaded.
    pub model: std::sync::RwLock<ModelInfo>,
    /// What `/metrics` says.
    pub metrics: Arc<Metrics>,
    /// The bounds on what requests may take.
    pub limits: RequestLimits,
    /// Images decoded at once: two per core. More would only share the cores, and every
    /// request would wait longer.
    pub decoding: Arc<Semaphore>,
    /// Decoding memory left, in KiB: each decode holds its image's worst case until it ends,
    /// so concurrent uploads cannot add up past the budget.
    pub decode_budget: Arc<Semaphore>,
    /// Requests served at once; past it, requests are refused at once with 503.
    pub in_flight: Arc<Semaphore>,
    /// Set once shutdown begins: `/readyz` then says not ready.
    pub draining: Arc<AtomicBool>,
    /// The model's name in the Open Inference Protocol's paths (`/v2/models/NAME`).
    pub model_name: String,
    /// Whether the server listens on this machine only, and so answers only requests that
    /// name it (`localhost`, a loopback address).
    pub local_only: bool,
    /// The on-device site's files (`--site`), served under `/device/`.
    pub site: Option<Arc<crate::site::Site>>,
}

/// How much a request may ask of the server.
#[derive(Clone, Debug)]
pub struct RequestLimits {
    /// Largest request body accepted, in bytes.
    pub body_bytes: usize,
    /// Longest a request may take from its headers to its answer, its body's arrival included.
    pub timeout: Duration,
    /// Requests served at once.
    pub max_in_flight: usize,
    /// Memory all concurrent decodes may hold together, in bytes; an image whose decoding
    /// alone would need more is refused.
    pub decode_budget_bytes: u64,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            body_bytes: 8 * 1024 * 1024,
            timeout: Duration::from_secs(20),
            max_in_flight: 256,
            decode_budget_bytes: 256 * 1024 * 1024,
        }
    }
}

impl AppState {
    /// The model that answers now.
    pub fn model(&self) -> ModelInfo {
        // A panic while the lock was held cannot leave a half-written ModelInfo: it is
        // replaced whole.
        match self.model.read() {
            Ok(model) => model.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The state for the model behind `queue`, within `limits`.
    pub fn new(
        queue: InferenceQueue,
        model: ModelInfo,
        metrics: Arc<Metrics>,
        limits: RequestLimits,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let budget_kib = usize::try_from(limits.decode_budget_bytes / 1024)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Self {
            queue,
            model: std::sync::RwLock::new(model),
            metrics,
            decoding: Arc::new(Semaphore::new(2 * cores)),
            decode_budget: Arc::new(Semaphore::new(budget_kib)),
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
            limits,
            draining: Arc::new(AtomicBool::new(false)),
            local_only: false,
            model_name: "mnist".into(),
            site: None,
        }
    }
}

/// A failed request: its status and a one-line reason, sent as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// A failure with `status`, said in `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400: the request itself is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: nothing by that name.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// A request meant for another server.
    pub fn misdirected(message: impl Into<String>) -> Self {
        Self::new(StatusCode::MISDIRECTED_REQUEST, message)
    }

    /// Over capacity: the client should try again shortly.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<Unanswered> for ApiError {
    fn from(error: Unanswered) -> Self {
        match error {
            Unanswered::Full => Self::busy("the server is at capacity; try again shortly"),
            Unanswered::Stopped => Self::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        }
    }
}

/// `GET /api/health`.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /livez`: the process answers.
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "live" }))
}

/// `GET /readyz`: the model is loaded and warmed (it is before the server listens), and the
/// server is not draining.
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.draining.load(Ordering::Relaxed) {
        let body = Json(json!({ "status": "draining" }));
        return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    }
    Json(json!({ "status": "ready" })).into_response()
}

/// `GET /metrics`, in the Prometheus (OpenMetrics) text format.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}

/// `GET /api/model`: which model answers (a label and its SHA-256, no path), its
/// architecture, its recorded accuracy and the thresholds its verdicts come from.
pub async fn model(State(state): State<Arc<AppState>>) -> Json<Value> {
    let model = state.model();
    Json(json!({
        "label": model.label,
        "sha256": model.sha256,
        "config": model.config,
        "test_accuracy": model.test_accuracy,
        "verdict": model.verdict,
    }))
}

/// `POST /api/classify`: the image as the raw body, or as the one file of a multipart form.
pub async fn classify(
    State(state): State<Arc<AppState>>,
    ImageUpload { name, bytes }: ImageUpload,
) -> Result<Json<Value>, ApiError> {
    let pixels = preprocess(&state, name, bytes).await?;
    let prediction = state.queue.classify(pixels).await??;
    Ok(Json(answer(&prediction, &pixels)))
}

/// Decodes and preprocesses an upload off the async threads, within the decoding budget.
///
/// The permits travel with the work: a client that hangs up drops this future, not the
/// decode, which keeps its share of the budget until it really ends.
pub(crate) async fn preprocess(
    state: &AppState,
    name: String,
    image: Bytes,
) -> Result<[u8; data::PIXELS], ApiError> {
    let too_large = |e: data::PreprocessError| {
        state.metrics.reject("too_many_pixels");
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
    };
    let cost = data::decoding_cost(&image, Path::new(&name)).map_err(too_large)?;
    let budget = state.limits.decode_budget_bytes;
    if cost > budget {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{name}: decoding it would take more than the server's {budget}-byte budget"),
        ));
    }
    let kib = u32::try_from(cost.div_ceil(1024)).unwrap_or(u32::MAX);
    let closed = |_| ApiError::busy("the server is shutting down");
    let memory = state
        .decode_budget
        .clone()
        .acquire_many_owned(kib)
        .await
        .map_err(closed)?;
    let core = state
        .decoding
        .clone()
        .acquire_owned()
        .await
        .map_err(closed)?;
    tokio::task::spawn_blocking(move || {
        let pixels = data::preprocess_bytes(&image, Path::new(&name));
        drop((memory, core));
        pixels
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| match e {
        data::PreprocessError::TooManyPixels { .. } => too_large(e),
        e => ApiError::bad_request(e.to_string()),
    })
}

/// `{digit, confidence, verdict, probabilities, preprocessed}`: `infer --json`'s schema, and a base64
/// PNG of the 28×28 image the network saw.
fn answer(prediction: &Prediction, pixels: &[u8; data::PIXELS]) -> Value {
    let mut answer = infer::output::prediction_value(prediction);
    answer["preprocessed"] = json!(BASE64.encode(data::preprocessed_png(pixels)));
    answer
}

/// The kinds of body `/api/classify` takes.
enum Upload {
    /// The image file's bytes as they are.
    Raw,
    /// An HTML form's `multipart/form-data`.
    Form,
}

/// What the `Content-Type` header says the body is; no header means raw bytes.
fn upload_kind(request: &Request) -> Result<Upload, ApiError> {
    let Some(value) = request.headers().get(header::CONTENT_TYPE) else {
        return Ok(Upload::Raw);
    };
    let content_type = value.to_str().unwrap_or_default().to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    match essence {
        "multipart/form-data" => Ok(Upload::Form),
        "application/octet-stream" => Ok(Upload::Raw),
        image if image.starts_with("image/") => Ok(Upload::Raw),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported content type `{other}`: send the image's bytes (image/* or \
                 application/octet-stream) or a multipart form with one file"
            ),
        )),
    }
}

/// An uploaded image: the body's bytes, or the one file of a multipart form, read within
/// the body limit; never empty.
pub struct ImageUpload {
    /// How the image is named in errors: the form's file name, or `request body`.
    pub name: String,
    /// The encoded image.
    pub bytes: Bytes,
}

impl FromRequest<Arc<AppState>> for ImageUpload {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let (name, bytes) = read_image(request, state.limits.body_bytes).await?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request(format!("{name}: empty image")));
        }
        Ok(Self { name, bytes })
    }
}

impl From<infer::ClassifyError> for ApiError {
    fn from(error: infer::ClassifyError) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

/// The uploaded image and a name for it in errors (the form's file name, or `request body`).
async fn read_image(request: Request, limit: usize) -> Result<(String, Bytes), ApiError> {
    let kind = upload_kind(&request)?;
    let (parts, body) = request.into_parts();
    let bytes = read_body(body, limit).await?;
    match kind {
        Upload::Raw => Ok(("request body".into(), bytes)),
        Upload::Form => {
            let request = Request::from_parts(parts, Body::from(bytes));
            form_file(request).await
        }
    }
}

/// The body, up to `limit` bytes.
///
/// A body over the limit is still read to its end, up to `limit` more bytes that are thrown
/// away, before the 413 goes out: a connection closed with data left unread is reset by the
/// kernel, and the client would lose the answer.
pub(crate) async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let mut kept = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total <= limit {
            kept.extend_from_slice(&data);
        } else if total > limit.saturating_mul(2) {
            break;
        }
    }
    if total > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over the limit of {limit} bytes"),
        ));
    }
    Ok(Bytes::from(kept))
}

/// The one file of a multipart form.
async fn form_file(request: Request) -> Result<(String, Bytes), ApiError> {
    let bad_form = |e: &dyn std::fmt::Display| ApiError::bad_request(format!("bad form: {e}"));
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| bad_form(&e.body_text()))?;
    let mut found = None;
    while let Some(field) = form.next_field().await.map_err(|e| bad_form(&e))? {
        let Some(name) = field.file_name().map(str::to_string) else {
            continue;
        };
        if found.is_some() {
            return Err(ApiError::bad_request("the form holds more than one file"));
        }
        found = Some((name, field.bytes().await.map_err(|e| bad_form(&e))?));
    }
    found.ok_or_else(|| ApiError::bad_request("the form holds no file"))
}

/// Any path that is not a route.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such page")
}

/// A route asked with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
}
