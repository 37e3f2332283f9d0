//! The JSON API end to end, over HTTP on an ephemeral port.

use crate::{Server, digit_of, samples};
use base64::Engine as _;
use serde_json::Value;

/// An HTTP client that hands back 4xx and 5xx answers instead of failing on them.
pub(crate) fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// POSTs `body` to `/api/classify` with `content_type`; the status and the JSON answer.
fn classify(server: &Server, body: &[u8], content_type: Option<&str>) -> (u16, Value) {
    let mut request = client().post(format!("{}/api/classify", server.url));
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    let response = request.send(body).expect("the server answers");
    answer(response)
}

pub(crate) fn get(server: &Server, path: &str) -> (u16, Value) {
    let response = client()
        .get(format!("{}{path}", server.url))
        .call()
        .expect("the server answers");
    answer(response)
}

fn answer(response: ureq::http::Response<ureq::Body>) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string().unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, value)
}

/// A well-formed answer naming `digit`.
fn assert_names(answer: &Value, digit: usize) {
    assert_eq!(answer["digit"], digit, "{answer}");
    let probabilities = answer["probabilities"].as_array().unwrap();
    assert_eq!(probabilities.len(), 10);
    let sum: f64 = probabilities.iter().map(|p| p.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-3, "{sum}");
    assert_eq!(answer["confidence"], probabilities[digit]);
    let png = base64::engine::general_purpose::STANDARD
        .decode(answer["preprocessed"].as_str().unwrap())
        .unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

#[test]
fn every_sample_digit_is_named_raw_and_as_a_form_file() {
    let server = Server::start(&[]);
    for sample in samples() {
        let bytes = std::fs::read(&sample).unwrap();
        let (status, raw) = classify(&server, &bytes, Some("application/octet-stream"));
        assert_eq!(status, 200, "{}: {raw}", sample.display());
        assert_names(&raw, digit_of(&sample));

        let boundary = "----mnist-burn-test";
        let mut form = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n",
            sample.file_name().unwrap().to_str().unwrap()
        )
        .into_bytes();
        form.extend(&bytes);
        form.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let (status, from_form) = classify(&server, &form, Some(&content_type));
        assert_eq!(status, 200, "{}: {from_form}", sample.display());
        assert_eq!(from_form, raw, "the same file, the same answer");
    }
}

#[test]
fn health_and_model_describe_the_service() {
    let server = Server::start(&[]);
    assert_eq!(
        get(&server, "/api/health"),
        (200, serde_json::json!({"status": "ok"}))
    );
    let (status, model) = get(&server, "/api/model");
    assert_eq!(status, 200);
    // Which model, exactly, and no path of the server's.
    assert_eq!(model["label"], "shipped");
    assert_eq!(model["sha256"].as_str().unwrap().len(), 64);
    assert!(model.get("source").is_none(), "{model}");
    assert_eq!(model["config"]["conv1_channels"], 10);
    let summary = std::fs::read_to_string(crate::root().join("crates/infer/model/summary.json"));
    let recorded: Value = serde_json::from_str(&summary.unwrap()).unwrap();
    assert_eq!(model["test_accuracy"], recorded["test_accuracy"]);
    assert_eq!(model["verdict"]["digit_at_least"], 0.489);
    let page = client().get(&server.url).call().unwrap();
    let html = page.into_body().read_to_string().unwrap();
    for hook in ["id=\"pad\"", "id=\"clear\"", "id=\"digit\""] {
        assert!(html.contains(hook), "{hook} missing from the page");
    }
}

/// How a test request is sent, and the status and answer it got.
type Send<'a> = Box<dyn Fn() -> (u16, Value) + 'a>;

#[test]
fn every_bad_request_gets_its_status_and_the_server_goes_on() {
    let server = Server::start(&["--max-body-mb", "1"]);
    // A white page: a valid PNG with nothing drawn on it.
    let blank = data::preprocessed_png(&[255; data::PIXELS]);
    let cases: Vec<(&str, Send, u16, &str)> = vec![
        (
            "empty body",
            Box::new(|| classify(&server, b"", Some("image/png"))),
            400,
            "empty",
        ),
        (
            "not an image",
            Box::new(|| classify(&server, b"hello", None)),
            400,
            "not a readable image",
        ),
        (
            "blank page",
            Box::new(|| classify(&server, &blank, Some("image/png"))),
            400,
            "no digit found",
        ),
        (
            "over the limit",
            Box::new(|| classify(&server, &vec![0u8; 2 * 1024 * 1024], Some("image/png"))),
            413,
            "limit",
        ),
        (
            "wrong type",
            Box::new(|| classify(&server, b"{}", Some("application/json"))),
            415,
            "content type",
        ),
        (
            "form without a file",
            Box::new(|| {
                classify(
                    &server,
                    b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n",
                    Some("multipart/form-data; boundary=x"),
                )
            }),
            400,
            "no file",
        ),
        (
            "unknown path",
            Box::new(|| get(&server, "/nope")),
            404,
            "no such page",
        ),
        (
            "wrong method",
            Box::new(|| get(&server, "/api/classify")),
            405,
            "method",
        ),
    ];
    let seven = std::fs::read(crate::root().join("data/digits/seven-mnist.png")).unwrap();
    for (name, request, status, needle) in cases {
        let (got, answer) = request();
        assert_eq!(got, status, "{name}: {answer}");
        let error = answer["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {answer}"));
        assert!(error.contains(needle), "{name}: {error}");
        assert!(!error.contains('\n'), "{name}: {error}");
        let (after, next) = classify(&server, &seven, Some("image/png"));
        assert_eq!(
            (after, next["digit"].as_u64()),
            (200, Some(7)),
            "after {name}"
        );
    }
}

#[test]
fn concurrent_clients_each_get_their_own_answer() {
    let server = Server::start(&[]);
    let samples = samples();
    std::thread::scope(|scope| {
        for client in 0..16 {
            let (server, samples) = (&server, &samples);
            scope.spawn(move || {
                for round in 0..6 {
                    let sample = &samples[(client + round) % samples.len()];
                    let bytes = std::fs::read(sample).unwrap();
                    let (status, answer) = classify(server, &bytes, Some("image/png"));
                    assert_eq!(status, 200, "{answer}");
                    assert_eq!(answer["digit"], digit_of(sample), "{}", sample.display());
                }
            });
        }
    });
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let server = Server::start(&[]);
    assert_eq!(get(&server, "/api/health").0, 200);
    let status = server.terminate();
    assert!(status.success(), "{status}");
}

#[test]
fn it_listens_on_this_machine_only_unless_told_otherwise() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_serve"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[default: 127.0.0.1:8080]"), "{help}");
}

#[test]
fn an_address_without_an_interface_is_refused_with_examples() {
    for (given, expected) in [
        ("8080", "a port alone"),
        ("example.org:80", "not an IP address with a port"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_serve"))
            .args(["--addr", given])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        for part in [expected, "127.0.0.1:", "0.0.0.0:"] {
            assert!(stderr.contains(part), "{given}: {stderr}");
        }
    }
}

/// Every route the server has is described in `/openapi.json`, and every path described is a
/// route (schemathesis, in CI, then checks the answers against the description).
#[test]
fn the_openapi_description_covers_every_route() {
    let source = std::fs::read_to_string(crate::root().join("crates/serve/src/lib.rs")).unwrap();
    let mut routes: Vec<&str> = source
        .split(".route(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    routes.sort();
    let server = Server::start(&[]);
    let (status, description) = get(&server, "/openapi.json");
    assert_eq!(status, 200);
    assert!(description["openapi"].as_str().unwrap().starts_with("3."));
    let mut described: Vec<String> = description["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    described.sort();
    assert_eq!(routes, described);
}
