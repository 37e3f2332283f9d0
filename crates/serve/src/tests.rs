//! The service in process, through `Router::oneshot`: no socket, no server process, the
//! handlers and middleware as a client sees them. The process-level tests (`tests/it/`) cover
//! what needs a real connection: timeouts, connection limits, signals.

use crate::api::{AppState, RequestLimits};
use crate::metrics::Metrics;
use crate::queue::InferenceQueue;
use crate::{LogFormat, app};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use infer::{DigitClassifier, ModelSource};
use std::sync::Arc;
use tower::ServiceExt as _;

/// The service with the shipped model, listening (as far as it knows) on loopback.
fn service() -> axum::Router {
    service_with_site(None)
}

/// [`service`], serving the on-device `site` too.
fn service_with_site(site: Option<crate::site::Site>) -> axum::Router {
    let source = ModelSource::Shipped;
    let info = source.info().unwrap();
    let classifier = DigitClassifier::load(&source, burn::tensor::Device::flex()).unwrap();
    let metrics = Arc::new(Metrics::new(&info.label, &info.sha256));
    let queue = InferenceQueue::start(classifier, 64, metrics.clone());
    let mut state = AppState::new(queue, info, metrics, RequestLimits::default());
    state.local_only = true;
    state.site = site.map(Arc::new);
    app(Arc::new(state), LogFormat::Text)
}

/// A request from this machine.
fn request(method: &str, path: &str, body: Body) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "127.0.0.1:8080")
        .body(body)
        .unwrap()
}

async fn json(response: axum::response::Response) -> serde_json::Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_sample_is_classified_with_infers_schema() {
    let seven = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits/seven-mnist.png"),
    )
    .unwrap();
    let response = service()
        .oneshot(request("POST", "/api/classify", Body::from(seven)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer = json(response).await;
    assert_eq!(answer["digit"], 7);
    assert_eq!(answer["verdict"], "digit");
    let keys: Vec<&String> = answer.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "confidence",
            "digit",
            "preprocessed",
            "probabilities",
            "verdict"
        ]
    );
}

#[tokio::test]
async fn refusals_are_json_with_their_status_and_the_security_headers() {
    for (method, path, body, status) in [
        ("GET", "/nowhere", Body::empty(), StatusCode::NOT_FOUND),
        (
            "GET",
            "/api/classify",
            Body::empty(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "POST",
            "/api/classify",
            Body::empty(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/classify",
            Body::from("not an image"),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let response = service()
            .oneshot(request(method, path, body))
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert!(json(response).await["error"].is_string());
    }
}

#[tokio::test]
async fn another_host_is_misdirected_and_the_model_is_named_without_a_path() {
    let mut foreign = request("GET", "/api/model", Body::empty());
    foreign
        .headers_mut()
        .insert(header::HOST, "evil.example".parse().unwrap());
    let response = service().oneshot(foreign).await.unwrap();
    assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST);
    let response = service()
        .oneshot(request("GET", "/api/model", Body::empty()))
        .await
        .unwrap();
    let model = json(response).await;
    assert_eq!(model["label"], "shipped");
    assert!(!model.to_string().contains('/'), "{model}");
}

/// A site's `device/` files are served with the types browsers insist on, nothing else is,
/// and a folder that is not a site is refused at start, naming what it lacks.
#[tokio::test]
async fn the_on_device_site_is_served_from_memory_and_only_it() {
    let dir = tempfile::tempdir().unwrap();
    let device = dir.path().join("device");
    std::fs::create_dir(&device).unwrap();
    std::fs::write(device.join("web.js"), "export default 1;").unwrap();
    let error = crate::site::Site::load(dir.path()).unwrap_err().to_string();
    assert!(
        error.contains("no web_bg.wasm") && error.contains("cargo xtask web"),
        "{error}"
    );
    for name in ["web_bg.wasm", "model.bpk", "config.toml"] {
        std::fs::write(device.join(name), name).unwrap();
    }
    std::fs::write(dir.path().join("secret.txt"), "not served").unwrap();
    let site = crate::site::Site::load(dir.path()).unwrap();
    let with_site = service_with_site(Some(site));
    for (name, kind) in [
        ("web.js", "text/javascript"),
        ("web_bg.wasm", "application/wasm"),
        ("model.bpk", "application/octet-stream"),
    ] {
        let path = format!("/device/{name}");
        let response = with_site
            .clone()
            .oneshot(request("GET", &path, Body::empty()))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert_eq!(response.headers()[header::CONTENT_TYPE], kind, "{name}");
    }
    for path in ["/device/secret.txt", "/device/..%2Fsecret.txt", "/device/"] {
        let response = with_site
            .clone()
            .oneshot(request("GET", path, Body::empty()))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let response = service()
        .oneshot(request("GET", "/device/web.js", Body::empty()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        json(response).await["error"]
            .as_str()
            .unwrap()
            .contains("--site")
    );
}
