//! The Open Inference Protocol (v2) end to end: metadata, and inference as JSON, with binary
//! tensors, and on encoded images, giving what `/api/classify` gives. The official Python
//! client is checked against it too (`an_official_client_classifies_as_the_api_does`).

use crate::api::{client, get};
use crate::{Server, digit_of, root, samples};
use base64::Engine as _;
use serde_json::{Value, json};

/// `/api/classify`'s answer for `file`: its probabilities, and the 28×28 pixels it saw.
fn api_answer(server: &Server, file: &std::path::Path) -> (Vec<f64>, Vec<u8>) {
    let answer = api_answer_json(server, file);
    let png = base64::engine::general_purpose::STANDARD
        .decode(answer["preprocessed"].as_str().unwrap())
        .unwrap();
    let pixels = image::load_from_memory(&png).unwrap().to_luma8().into_raw();
    let probabilities = answer["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap())
        .collect();
    (probabilities, pixels)
}

/// `/api/classify`'s JSON answer for `file`.
fn api_answer_json(server: &Server, file: &std::path::Path) -> Value {
    let response = client()
        .post(format!("{}/api/classify", server.url))
        .header("Content-Type", "application/octet-stream")
        .send(&std::fs::read(file).unwrap()[..])
        .unwrap();
    serde_json::from_str(&response.into_body().read_to_string().unwrap()).unwrap()
}

/// POSTs `body` to the model's infer endpoint; the status, headers and body.
fn infer(server: &Server, body: Vec<u8>, json_length: Option<usize>) -> (u16, String, Vec<u8>) {
    let mut request = client().post(format!("{}/v2/models/mnist/infer", server.url));
    if let Some(length) = json_length {
        request = request.header("Inference-Header-Content-Length", length.to_string());
    }
    let response = request.send(&body[..]).unwrap();
    let status = response.status().as_u16();
    let length = response
        .headers()
        .get("inference-header-content-length")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, length, response.into_body().read_to_vec().unwrap())
}

fn assert_close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-5, "{a:?} against {b:?}");
    }
}

#[test]
fn metadata_and_health_describe_the_model() {
    let server = Server::start(&[]);
    assert_eq!(get(&server, "/v2/health/live").0, 200);
    assert_eq!(
        get(&server, "/v2/health/ready"),
        (200, json!({"ready": true}))
    );
    assert_eq!(get(&server, "/v2/models/mnist/ready").0, 200);
    assert_eq!(
        get(&server, "/v2").1["extensions"],
        json!(["binary_tensor_data"])
    );
    let (status, model) = get(&server, "/v2/models/mnist");
    assert_eq!(status, 200);
    assert_eq!(model["inputs"][0]["name"], "input");
    assert_eq!(model["inputs"][0]["shape"], json!([-1, 1, 28, 28]));
    assert_eq!(model["outputs"][0]["shape"], json!([-1, 10]));
    assert_eq!(model["outputs"][1]["name"], "verdict");
    let (status, answer) = get(&server, "/v2/models/fashion");
    assert_eq!(status, 404);
    assert!(answer["error"].as_str().unwrap().contains("`mnist`"));
}

#[test]
fn pixels_as_json_and_as_binary_give_what_the_api_gives() {
    let server = Server::start(&[]);
    for sample in samples() {
        let (expected, pixels) = api_answer(&server, &sample);
        let floats: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
        // JSON, nested as [1, 1, 28, 28].
        let nested: Vec<Vec<f32>> = floats.chunks(28).map(<[f32]>::to_vec).collect();
        let request = json!({"id": "a", "inputs": [{
            "name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": [[nested]],
        }]});
        let (status, _, body) = infer(&server, request.to_string().into_bytes(), None);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer["id"], "a");
        let output = &answer["outputs"][0];
        assert_eq!(output["shape"], json!([1, 10]));
        let got: Vec<f64> = serde_json::from_value(output["data"].clone()).unwrap();
        assert_close(&got, &expected);
        let digit = (0..10).max_by(|&a, &b| got[a].total_cmp(&got[b])).unwrap();
        assert_eq!(digit, digit_of(&sample), "{}", sample.display());

        // The binary tensor extension, both ways.
        let raw: Vec<u8> = floats.iter().flat_map(|f| f.to_le_bytes()).collect();
        let header = json!({
            "inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32",
                        "parameters": {"binary_data_size": raw.len()}}],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": true}}],
        })
        .to_string();
        let mut body = header.clone().into_bytes();
        body.extend(&raw);
        let (status, length, body) = infer(&server, body, Some(header.len()));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let length: usize = length.parse().unwrap();
        let head: Value = serde_json::from_slice(&body[..length]).unwrap();
        assert_eq!(
            head["outputs"].as_array().unwrap().len(),
            1,
            "only what was asked"
        );
        let got: Vec<f64> = body[length..]
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect();
        assert_close(&got, &expected);
    }
}

#[test]
fn encoded_images_as_bytes_are_classified_in_one_request() {
    let server = Server::start(&[]);
    let samples = samples();
    let mut data = Vec::new();
    for sample in &samples {
        let bytes = std::fs::read(sample).unwrap();
        data.extend((bytes.len() as u32).to_le_bytes());
        data.extend(bytes);
    }
    let header = json!({"inputs": [{
        "name": "image", "shape": [samples.len()], "datatype": "BYTES",
        "parameters": {"binary_data_size": data.len()},
    }]})
    .to_string();
    let mut body = header.clone().into_bytes();
    body.extend(data);
    let (status, _, body) = infer(&server, body, Some(header.len()));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).unwrap();
    let got: Vec<f64> = serde_json::from_value(answer["outputs"][0]["data"].clone()).unwrap();
    // With no output named, the verdicts come too, as /api/classify gives them.
    let verdicts = &answer["outputs"][1];
    assert_eq!(verdicts["name"], "verdict");
    assert_eq!(verdicts["shape"], json!([samples.len()]));
    for (index, sample) in samples.iter().enumerate() {
        let classified = api_answer_json(&server, sample);
        assert_eq!(
            verdicts["data"][index],
            classified["verdict"],
            "{}",
            sample.display()
        );
    }
    for (probabilities, sample) in got.chunks(10).zip(&samples) {
        let digit = (0..10)
            .max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]))
            .unwrap();
        assert_eq!(digit, digit_of(sample), "{}", sample.display());
    }
}

#[test]
fn malformed_inference_requests_get_400_naming_the_fault() {
    let server = Server::start(&[]);
    let pixels = vec![0.5f32; 784];
    for (request, needle) in [
        (json!({"inputs": []}), "exactly one input"),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 28, 28], "datatype": "FP32", "data": pixels}]}),
            "expected [N, 1, 28, 28]",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [2, 1, 28, 28], "datatype": "FP32", "data": pixels}]}),
            "784 values",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": vec![2.0; 784]}]}),
            "outside [0, 1]",
        ),
        (
            json!({"inputs": [{"name": "x", "shape": [1], "datatype": "INT8", "data": [1]}]}),
            "unknown input",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": pixels}],
                   "outputs": [{"name": "logits"}]}),
            "unknown output `logits`",
        ),
    ] {
        let (status, _, body) = infer(&server, request.to_string().into_bytes(), None);
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 400, "{body}");
        assert!(body.contains(needle), "{needle:?} missing from {body}");
    }
    let (status, _, _) = infer(&server, b"{\"inputs\": 1}".to_vec(), Some(1000));
    assert_eq!(status, 400);
    assert_eq!(get(&server, "/v2/health/ready").0, 200);
}

/// Runs `MNIST_BURN_PYTHON` with `args` in `dir`; what it printed, once it has succeeded.
fn python(args: &[&std::ffi::OsStr], dir: &std::path::Path) -> String {
    let python = std::env::var("MNIST_BURN_PYTHON")
        .expect("MNIST_BURN_PYTHON names the Python that .ci/run sets up");
    let output = std::process::Command::new(python)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The official Python client (`tritonclient[http]`), as KServe and Triton users would call
/// the server, names the sample digits as `/api/classify` does.
#[test]
#[ignore = "needs Python with tritonclient[http] and numpy in MNIST_BURN_PYTHON; \
            .ci/run sets up that venv and runs it with `cargo test -p serve -- --ignored`"]
fn an_official_client_classifies_as_the_api_does() {
    let server = Server::start(&[]);
    let address = server.url.trim_start_matches("http://");
    let mut expected = Vec::new();
    for sample in samples() {
        let (probabilities, pixels) = api_answer(&server, &sample);
        let verdict = api_answer_json(&server, &sample)["verdict"].clone();
        let mut case = json!({"file": sample, "probabilities": probabilities, "pixels": pixels});
        case["verdict"] = verdict;
        expected.push(case);
    }
    let cases = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cases.path(), json!(expected).to_string()).unwrap();
    let script = root().join("scripts/check_oip.py");
    let stdout = python(
        &[
            script.as_os_str(),
            address.as_ref(),
            cases.path().as_os_str(),
        ],
        &root(),
    );
    assert!(stdout.contains("agree with /api/classify"), "{stdout}");
}

/// schemathesis sends generated requests, valid and not, to every operation of
/// `/openapi.json` and checks each answer against the description: no server error, every
/// status and content type and body as described.
#[test]
#[ignore = "needs Python with schemathesis in MNIST_BURN_PYTHON; .ci/run sets up that venv \
            and runs it with `cargo test -p serve -- --ignored`"]
fn schemathesis_finds_every_answer_as_described() {
    let server = Server::start(&[]);
    let reports = tempfile::tempdir().unwrap();
    let url = format!("{}/openapi.json", server.url);
    let args = [
        "-m",
        "schemathesis.cli",
        "run",
        &url,
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,\
         response_schema_conformance",
        "--max-examples",
        "40",
        "--seed",
        "1",
        "--workers",
        "2",
        "--generation-database",
        "none",
    ];
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    python(&args, reports.path());
    assert_eq!(get(&server, "/api/health").0, 200);
}

/// `/metrics` parses with the Prometheus project's own parser, and its counts are the
/// requests sent.
#[test]
#[ignore = "needs Python with prometheus-client in MNIST_BURN_PYTHON; .ci/run sets up that \
            venv and runs it with `cargo test -p serve -- --ignored`"]
fn the_metrics_parse_with_prometheus_client_and_count_what_was_sent() {
    let server = Server::start(&[]);
    for _ in 0..7 {
        assert_eq!(get(&server, "/api/health").0, 200);
    }
    let seven = root().join("data/digits/seven-mnist.png");
    for _ in 0..3 {
        api_answer(&server, &seven);
    }
    assert_eq!(get(&server, "/v2/models/none").0, 404);
    let script = root().join("scripts/check_metrics.py");
    let address = server.url.trim_start_matches("http://");
    let stdout = python(&[script.as_os_str(), address.as_ref()], &root());
    let counts: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(counts["/api/health 200"], 7.0, "{counts}");
    assert_eq!(counts["/api/classify 200"], 3.0, "{counts}");
    assert_eq!(counts["/v2/models/{name} 404"], 1.0, "{counts}");
}
