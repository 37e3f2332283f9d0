//! The server under clients that misbehave, and what operators read from it: every bound
//! holds, every refusal has its status, and the server goes on answering.

use crate::Server;
use crate::api::{client, get};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// `host:port` of the server.
fn address(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_string()
}

/// Sends `head` (and no more) on a new connection, then reads until the server closes it or
/// `wait` passes; what came back, and how long it took.
fn send_and_read(server: &Server, head: &[u8], wait: Duration) -> (String, Duration) {
    let mut stream = TcpStream::connect(address(server)).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    stream.write_all(head).unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

/// A 35-byte GIF whose header claims 6000 × 6000 pixels.
fn huge_gif() -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend(6000u16.to_le_bytes());
    gif.extend(6000u16.to_le_bytes());
    gif.extend([0x80, 0, 0, 0xff, 0xff, 0xff, 0, 0, 0, b',']);
    gif.extend([0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4c, 1, 0, b';']);
    gif
}

#[test]
fn an_image_with_too_many_pixels_is_refused_before_decoding() {
    let server = Server::start(&[]);
    let response = client()
        .post(format!("{}/api/classify", server.url))
        .header("Content-Type", "image/gif")
        .send(&huge_gif()[..])
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let text = response.into_body().read_to_string().unwrap();
    assert!(text.contains("6000×6000 pixels"), "{text}");
    assert_eq!(get(&server, "/api/health").0, 200);
}

#[test]
fn a_silent_connection_is_closed_after_the_header_timeout() {
    let server = Server::start(&["--header-timeout", "1"]);
    let (answer, waited) = send_and_read(&server, b"", Duration::from_secs(10));
    assert!(waited < Duration::from_secs(5), "kept for {waited:?}");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert_eq!(get(&server, "/api/health").0, 200);
}

#[test]
fn a_body_that_trickles_in_gets_408_at_the_request_timeout() {
    let server = Server::start(&["--request-timeout", "1"]);
    let head = b"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n\
                 Content-Length: 100000\r\n\r\n\x89PNG";
    let (answer, waited) = send_and_read(&server, head, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    assert_eq!(get(&server, "/api/health").0, 200);
}

#[test]
fn over_capacity_a_request_is_refused_at_once_with_retry_after() {
    let server = Server::start(&["--max-in-flight", "1", "--request-timeout", "30"]);
    // One upload that never finishes holds the only place.
    let mut holder = TcpStream::connect(address(&server)).unwrap();
    holder
        .write_all(
            b"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n\
              Content-Length: 1000\r\n\r\nx",
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let response = client()
        .post(format!("{}/api/classify", server.url))
        .header("Content-Type", "image/png")
        .send(&b"\x89PNG"[..])
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Everything else is still served.
    assert_eq!(get(&server, "/api/health").0, 200);
    let (_, metrics) = text(&server, "/metrics");
    assert!(
        metrics.contains("http_requests_rejected_total{reason=\"busy\"} 1"),
        "{metrics}"
    );
    drop(holder);
}

#[test]
fn sigterm_with_a_slow_client_exits_at_the_drain_deadline() {
    let server = Server::start(&["--drain-timeout", "1", "--request-timeout", "60"]);
    let mut slow = TcpStream::connect(address(&server)).unwrap();
    slow.write_all(
        b"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n\
          Content-Length: 100000\r\n\r\nx",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let status = server.terminate();
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_unwritable_log_costs_no_answer() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let server = Server::start_logging_to(&[], Stdio::from(full));
    for _ in 0..3 {
        assert_eq!(get(&server, "/api/health").0, 200);
    }
}

/// The status and text of `GET path`.
fn text(server: &Server, path: &str) -> (ureq::http::HeaderMap, String) {
    let response = client()
        .get(format!("{}{path}", server.url))
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{path}");
    let headers = response.headers().clone();
    (headers, response.into_body().read_to_string().unwrap())
}

#[test]
fn probes_metrics_and_security_headers() {
    let server = Server::start(&[]);
    assert_eq!(get(&server, "/livez").0, 200);
    assert_eq!(get(&server, "/readyz").0, 200);
    for _ in 0..3 {
        assert_eq!(get(&server, "/api/health").0, 200);
    }
    assert_eq!(get(&server, "/no/such/page").0, 404);
    let (headers, metrics) = text(&server, "/metrics");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .contains("openmetrics")
    );
    for line in [
        "http_requests_total{route=\"/api/health\",status=\"200\"} 3",
        "http_requests_total{route=\"unmatched\",status=\"404\"} 1",
        "model_info{label=\"shipped\",sha256=\"",
        "# EOF",
    ] {
        assert!(metrics.contains(line), "{line} missing from {metrics}");
    }
    for path in ["/", "/api/health", "/no/such/page"] {
        let response = client()
            .get(format!("{}{path}", server.url))
            .call()
            .unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("default-src 'none'"), "{path}: {policy}");
        assert!(headers.contains_key("x-request-id"), "{path}");
    }
}

/// A page elsewhere whose name resolves to 127.0.0.1 (DNS rebinding) is not answered.
#[test]
fn a_request_for_another_host_is_refused() {
    let server = Server::start(&[]);
    let (answer, _) = send_and_read(
        &server,
        b"GET /api/model HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
    assert!(!answer.contains("\"label\""), "{answer}");
    let (answer, _) = send_and_read(
        &server,
        b"GET /api/health HTTP/1.1\r\nHost: localhost:1\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A run directory holding the shipped model, as `train` would have left it.
fn shipped_run(dir: &std::path::Path) -> std::path::PathBuf {
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let shipped = crate::root().join("crates/infer/model");
    for file in [
        "model.bpk",
        "model.bpk.sha256",
        "config.toml",
        "summary.json",
    ] {
        std::fs::copy(shipped.join(file), run.join(file)).unwrap();
    }
    run
}

/// Sends SIGHUP and waits until `/metrics` counts `expected` reloads with `result`.
fn reload(server: &Server, result: &str, expected: usize) -> String {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let line = format!("model_reloads_total{{result=\"{result}\"}} {expected}");
    let started = Instant::now();
    loop {
        let (_, metrics) = text(server, "/metrics");
        if metrics.contains(&line) {
            return metrics;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{metrics}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A SIGHUP sent as soon as the address is printed reloads: the handler is in place before
/// the server says it is up (a signal before it would have ended the process).
#[test]
fn a_sighup_right_after_start_reloads_and_does_not_kill() {
    for _ in 0..3 {
        let server = Server::start(&[]);
        reload(&server, "ok", 1);
        assert_eq!(get(&server, "/api/health").0, 200);
    }
}

/// SIGHUP loads the model again while clients are served; a damaged model is refused and
/// the old one keeps answering.
#[test]
fn sighup_reloads_the_model_and_a_damaged_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = shipped_run(dir.path());
    let server = Server::start(&["--model", run.to_str().unwrap()]);
    let seven = std::fs::read(crate::root().join("data/digits/seven-mnist.png")).unwrap();
    let answers = |count: usize| {
        for _ in 0..count {
            let response = client()
                .post(format!("{}/api/classify", server.url))
                .header("Content-Type", "image/png")
                .send(&seven[..])
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
        }
    };
    std::thread::scope(|scope| {
        let load = scope.spawn(|| answers(200));
        for round in 1..=3 {
            reload(&server, "ok", round);
        }
        load.join().unwrap();
    });
    let (_, model) = get(&server, "/api/model");
    let sha256 = model["sha256"].as_str().unwrap().to_string();
    // A flipped byte in the weights: the checksum refuses it, the old model goes on.
    let record = run.join("model.bpk");
    let mut bytes = std::fs::read(&record).unwrap();
    let at = bytes.len() - 16;
    bytes[at] ^= 0x40;
    std::fs::write(&record, &bytes).unwrap();
    let metrics = reload(&server, "failed", 1);
    assert!(metrics.contains(&sha256), "{metrics}");
    answers(5);
    assert_eq!(get(&server, "/api/model").1["sha256"], sha256.as_str());
}
