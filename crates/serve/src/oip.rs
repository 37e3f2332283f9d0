//! The Open Inference Protocol (v2), the REST protocol KServe, Triton and their clients
//! speak: health, server and model metadata, and inference on a `[N, 1, 28, 28]` FP32 tensor
//! of MNIST-style pixels in [0, 1] (white digit on black, as torchvision's `ToTensor` gives)
//! or on encoded images as BYTES. Tensors travel as JSON or with the binary tensor extension
//! (`Inference-Header-Content-Length`), which the official clients use by default.

use crate::api::{ApiError, AppState, read_body};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The input tensor of pixels, and the output tensor of probabilities.
pub const PIXELS_INPUT: &str = "input";
/// The input tensor of encoded images (PNG, JPEG, ...), one per element.
pub const IMAGES_INPUT: &str = "image";
/// The output: each image's ten probabilities.
pub const OUTPUT: &str = "probabilities";
/// The output: each image's verdict (`digit`, `unsure` or `not-a-digit`), as `/api/classify`
/// gives it.
pub const VERDICT_OUTPUT: &str = "verdict";
/// Most images in one inference request.
pub const MAX_IMAGES: usize = 64;
/// The header that splits a body into its JSON and its binary tensors.
const HEADER_LENGTH: &str = "inference-header-content-length";

/// `GET /v2`: the server's metadata.
pub async fn server_metadata() -> Json<Value> {
    Json(json!({
        "name": "mnist-burn",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
    }))
}

/// `GET /v2/health/live`.
pub async fn live() -> Json<Value> {
    Json(json!({ "live": true }))
}

/// `GET /v2/health/ready` and `GET /v2/models/{name}/ready` (the one model is ready when
/// the server is).
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let ready = !state.draining.load(std::sync::atomic::Ordering::Relaxed);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "ready": ready }))).into_response()
}

/// `GET /v2/models/{name}/ready`.
pub async fn model_ready(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    known_model(&state, &name)?;
    Ok(ready(State(state)).await)
}

/// `GET /v2/models/{name}`: what the model takes and gives.
pub async fn model_metadata(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    known_model(&state, &name)?;
    let model = state.model();
    Ok(Json(json!({
        "name": name,
        "versions": [model.sha256.get(..12).unwrap_or_default()],
        "platform": "burn",
        "inputs": [
            {"name": PIXELS_INPUT, "datatype": "FP32", "shape": [-1, 1, 28, 28]},
            {"name": IMAGES_INPUT, "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [
            {"name": OUTPUT, "datatype": "FP32", "shape": [-1, 10]},
            {"name": VERDICT_OUTPUT, "datatype": "BYTES", "shape": [-1]},
        ],
    })))
}

/// Refuses any model name but the one served.
fn known_model(state: &AppState, name: &str) -> Result<(), ApiError> {
    if name == state.model_name {
        return Ok(());
    }
    Err(ApiError::not_found(format!(
        "no model named `{name}`; this server has `{}`",
        state.model_name
    )))
}

/// An inference request's JSON.
#[derive(Debug, Deserialize)]
struct InferRequest {
    #[serde(default)]
    id: Option<String>,
    inputs: Vec<InputTensor>,
    #[serde(default)]
    outputs: Vec<RequestedOutput>,
    #[serde(default)]
    parameters: Parameters,
}

/// One input tensor: its data inline, or `binary_data_size` bytes of the binary part.
#[derive(Debug, Deserialize)]
struct InputTensor {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Parameters,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct RequestedOutput {
    name: String,
    #[serde(default)]
    parameters: Parameters,
}

/// The parameters this server reads; others are ignored, as the protocol asks.
#[derive(Debug, Default, Deserialize)]
struct Parameters {
    binary_data_size: Option<u64>,
    binary_data: Option<bool>,
    binary_data_output: Option<bool>,
}

/// `POST /v2/models/{name}/infer`.
pub async fn infer(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    known_model(&state, &name)?;
    let header_length = header_length(request.headers())?;
    let body = read_body(request.into_body(), state.limits.body_bytes).await?;
    let (request, binary) = split_body(&body, header_length)?;
    let [input] = request.inputs.as_slice() else {
        return Err(ApiError::bad_request("give exactly one input tensor"));
    };
    if let Some(unknown) = request
        .outputs
        .iter()
        .find(|output| ![OUTPUT, VERDICT_OUTPUT].contains(&output.name.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "unknown output `{}`: ask for `{OUTPUT}` or `{VERDICT_OUTPUT}`",
            unknown.name
        )));
    }
    let data = input_bytes(input, binary)?;
    let images = match (input.name.as_str(), input.datatype.as_str()) {
        (PIXELS_INPUT, "FP32") => pixels_from_floats(input, data)?,
        (IMAGES_INPUT, "BYTES") => decode_images(&state, input, data).await?,
        (name, datatype) => {
            return Err(ApiError::bad_request(format!(
                "unknown input `{name}` ({datatype}): give `{PIXELS_INPUT}` (FP32, [N, 1, 28, \
                 28]) or `{IMAGES_INPUT}` (BYTES, [N])"
            )));
        }
    };
    let predictions = state.queue.classify_all(&images).await??;
    Ok(answer(&name, &request, &predictions))
}

/// The JSON part's length, when the body carries binary tensors after it.
fn header_length(headers: &HeaderMap) -> Result<Option<usize>, ApiError> {
    headers
        .get(HEADER_LENGTH)
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .ok_or_else(|| ApiError::bad_request(format!("{HEADER_LENGTH}: not a length")))
        })
        .transpose()
}

/// The request's JSON and the binary part after it.
fn split_body(
    body: &Bytes,
    header_length: Option<usize>,
) -> Result<(InferRequest, &[u8]), ApiError> {
    let length = header_length.unwrap_or(body.len());
    let Some((json, binary)) = body.split_at_checked(length) else {
        return Err(ApiError::bad_request(format!(
            "{HEADER_LENGTH} is {length}, longer than the body ({} bytes)",
            body.len()
        )));
    };
    let request = serde_json::from_slice(json)
        .map_err(|e| ApiError::bad_request(format!("not an inference request: {e}")))?;
    Ok((request, binary))
}

/// The input's data: its binary part (all of it: one input is taken), or its JSON.
fn input_bytes<'a>(input: &'a InputTensor, binary: &'a [u8]) -> Result<Data<'a>, ApiError> {
    match (input.parameters.binary_data_size, &input.data) {
        (Some(size), _) => {
            if usize::try_from(size).ok() != Some(binary.len()) {
                return Err(ApiError::bad_request(format!(
                    "binary_data_size is {size}, but {} bytes follow the JSON",
                    binary.len()
                )));
            }
            Ok(Data::Binary(binary))
        }
        (None, Some(data)) => Ok(Data::Json(data)),
        (None, None) => Err(ApiError::bad_request(format!(
            "input `{}` has no data",
            input.name
        ))),
    }
}

/// An input tensor's elements, as they came.
enum Data<'a> {
    Json(&'a Value),
    Binary(&'a [u8]),
}

/// The number of images in a tensor of `shape`, checked against `expected` (the shape after
/// the batch axis) and [`MAX_IMAGES`].
fn image_count(shape: &[i64], expected: &[i64]) -> Result<usize, ApiError> {
    let wrong = || {
        ApiError::bad_request(format!(
            "shape {shape:?}: expected [N{}] with 1 ≤ N ≤ {MAX_IMAGES}",
            expected
                .iter()
                .map(|d| format!(", {d}"))
                .collect::<String>()
        ))
    };
    let (&count, rest) = shape.split_first().ok_or_else(wrong)?;
    if rest != expected || !(1..=MAX_IMAGES as i64).contains(&count) {
        return Err(wrong());
    }
    Ok(count as usize)
}

/// `[N, 1, 28, 28]` floats in [0, 1] as the pixels the network takes: rounded to the 256
/// levels every image the network sees has (`data::pixel_to_input` inverts this exactly).
fn pixels_from_floats(
    input: &InputTensor,
    data: Data,
) -> Result<Vec<[u8; data::PIXELS]>, ApiError> {
    let count = image_count(&input.shape, &[1, 28, 28])?;
    let values: Vec<f32> = match data {
        Data::Binary(bytes) => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Data::Json(value) => {
            let mut values = Vec::with_capacity(count * data::PIXELS);
            flatten_numbers(value, &mut values, count * data::PIXELS)?;
            values
        }
    };
    if values.len() != count * data::PIXELS {
        return Err(ApiError::bad_request(format!(
            "{} values for shape {:?} ({} expected)",
            values.len(),
            input.shape,
            count * data::PIXELS
        )));
    }
    if let Some(bad) = values.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(ApiError::bad_request(format!(
            "pixel value {bad} is outside [0, 1] (MNIST-style: white digit on black, as \
             ToTensor() gives)"
        )));
    }
    Ok(values
        .chunks_exact(data::PIXELS)
        .map(|image| std::array::from_fn(|i| (image[i] * 255.0).round() as u8))
        .collect())
}

/// The numbers of a (possibly nested) JSON array, in order, at most `limit` of them.
fn flatten_numbers(value: &Value, into: &mut Vec<f32>, limit: usize) -> Result<(), ApiError> {
    match value {
        Value::Number(number) => {
            if into.len() == limit {
                return Err(ApiError::bad_request("more values than the shape holds"));
            }
            into.push(number.as_f64().unwrap_or(f64::NAN) as f32);
            Ok(())
        }
        // The nesting is bounded by serde_json's own recursion limit.
        Value::Array(items) => items
            .iter()
            .try_for_each(|item| flatten_numbers(item, into, limit)),
        other => Err(ApiError::bad_request(format!("not a number: {other}"))),
    }
}

/// BYTES elements, each an encoded image, preprocessed as `/api/classify` does.
async fn decode_images(
    state: &AppState,
    input: &InputTensor,
    data: Data<'_>,
) -> Result<Vec<[u8; data::PIXELS]>, ApiError> {
    let count = image_count(&input.shape, &[])?;
    let files: Vec<Bytes> = match data {
        Data::Binary(mut bytes) => {
            // Each element: its length as 4 little-endian bytes, then its bytes.
            let mut files = Vec::with_capacity(count);
            while let Some((length, rest)) = bytes.split_first_chunk::<4>() {
                let length = u32::from_le_bytes(*length) as usize;
                let (file, rest) = rest.split_at_checked(length).ok_or_else(|| {
                    ApiError::bad_request("a BYTES element is longer than the data")
                })?;
                files.push(Bytes::copy_from_slice(file));
                bytes = rest;
            }
            files
        }
        Data::Json(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(Bytes::copy_from_slice(text.as_bytes())),
                _ => Err(ApiError::bad_request("BYTES elements are strings")),
            })
            .collect::<Result<_, _>>()?,
        Data::Json(_) => return Err(ApiError::bad_request("BYTES data is an array of strings")),
    };
    if files.len() != count {
        return Err(ApiError::bad_request(format!(
            "{} images for shape {:?}",
            files.len(),
            input.shape
        )));
    }
    let mut images = Vec::with_capacity(count);
    for (index, file) in files.into_iter().enumerate() {
        images.push(crate::api::preprocess(state, format!("{IMAGES_INPUT}[{index}]"), file).await?);
    }
    Ok(images)
}

/// The response: the outputs asked for (both when none is named), the probabilities as JSON
/// or, when the client asked for it, as binary; the verdicts as JSON strings.
fn answer(name: &str, request: &InferRequest, predictions: &[model::Prediction]) -> Response {
    let wanted = |output: &str| {
        request.outputs.is_empty() || request.outputs.iter().any(|asked| asked.name == output)
    };
    let binary = request
        .outputs
        .iter()
        .find(|output| output.name == OUTPUT)
        .and_then(|output| output.parameters.binary_data)
        .or(request.parameters.binary_data_output)
        .unwrap_or(false);
    let probabilities: Vec<f32> = predictions
        .iter()
        .flat_map(|p| p.probabilities.iter().copied())
        .collect();
    let mut outputs = Vec::new();
    let mut binary_part = Vec::new();
    if wanted(OUTPUT) {
        let mut output =
            json!({"name": OUTPUT, "datatype": "FP32", "shape": [predictions.len(), 10]});
        match binary {
            true => {
                binary_part = probabilities.iter().flat_map(|p| p.to_le_bytes()).collect();
                output["parameters"] = json!({ "binary_data_size": binary_part.len() });
            }
            false => output["data"] = json!(probabilities),
        }
        outputs.push(output);
    }
    if wanted(VERDICT_OUTPUT) {
        let verdicts: Vec<model::Verdict> = predictions.iter().map(|p| p.verdict).collect();
        outputs.push(json!({
            "name": VERDICT_OUTPUT, "datatype": "BYTES", "shape": [predictions.len()],
            "data": verdicts,
        }));
    }
    let mut body = json!({"model_name": name, "outputs": outputs});
    if let Some(id) = &request.id {
        body["id"] = json!(id);
    }
    if !(binary && wanted(OUTPUT)) {
        return Json(body).into_response();
    }
    let mut payload = body.to_string().into_bytes();
    let json_length = payload.len();
    payload.extend(binary_part);
    let mut response = payload.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(HEADER_LENGTH, HeaderValue::from(json_length));
    response
}
