//! The JSON API: `POST /api/classify`, `GET /api/health`, `GET /api/model`, and JSON errors
//! with the right status for everything else.

use crate::batcher::Batcher;
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

/// What every request can reach.
pub struct AppState {
    /// The network, behind its batching queue.
    pub batcher: Batcher,
    /// What `/api/model` says.
    pub model: ModelInfo,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Images decoded at once: one per core. More would only share the cores, and every
    /// request would wait longer.
    pub decoding: tokio::sync::Semaphore,
}

/// A failed request: its status and a one-line reason, sent as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// `GET /api/health`.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /api/model`: where the weights come from, the architecture, the recorded accuracy.
pub async fn model(State(state): State<Arc<AppState>>) -> Json<Value> {
    let model = &state.model;
    Json(json!({
        "source": model.source,
        "config": model.config,
        "test_accuracy": model.test_accuracy,
    }))
}

/// `POST /api/classify`: the image as the raw body, or as the one file of a multipart form.
pub async fn classify(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let (name, image) = read_image(request, state.body_limit).await?;
    if image.is_empty() {
        return Err(ApiError::bad_request(format!("{name}: empty image")));
    }
    // Decoding and preprocessing are CPU work: off the async threads, one image per core.
    let permit = state
        .decoding
        .acquire()
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let pixels =
        tokio::task::spawn_blocking(move || data::preprocess_bytes(&image, Path::new(&name)))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    drop(permit);
    let prediction = state
        .batcher
        .classify(pixels)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(answer(&prediction, &pixels)))
}

/// `{digit, confidence, probabilities, preprocessed}`, the last a base64 PNG of the 28×28
/// image the network saw.
fn answer(prediction: &Prediction, pixels: &[u8; data::PIXELS]) -> Value {
    json!({
        "digit": prediction.digit,
        "confidence": prediction.confidence(),
        "probabilities": prediction.probabilities,
        "preprocessed": BASE64.encode(infer::preprocessed_png(pixels)),
    })
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
async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, ApiError> {
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
