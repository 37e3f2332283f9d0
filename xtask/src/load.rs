//! A small HTTP load generator for `bench --serve`: N clients, each on one keep-alive
//! connection to 127.0.0.1, posting images to `/api/classify` as fast as answers come back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What one load level measured.
pub struct Load {
    /// Requests answered with 200.
    pub ok: usize,
    /// Requests answered otherwise, or lost with their connection.
    pub errors: usize,
    /// Wall-clock seconds from the first request to the last answer.
    pub seconds: f64,
    /// Each successful request's latency, in milliseconds, sorted.
    pub latencies_ms: Vec<f64>,
    /// Each request refused for capacity (503)'s latency, in milliseconds, sorted.
    pub refused_ms: Vec<f64>,
}

impl Load {
    /// Successful classifications per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.seconds.max(1e-9)
    }

    /// The latency below which a share `q` of the requests finished.
    pub fn percentile(&self, q: f64) -> f64 {
        percentile(&self.latencies_ms, q)
    }

    /// The same, over the requests refused for capacity.
    pub fn refused_percentile(&self, q: f64) -> f64 {
        percentile(&self.refused_ms, q)
    }
}

/// The value below which a share `q` of the sorted `values` lie.
fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let rank = ((values.len() as f64 * q).ceil() as usize).max(1) - 1;
    values[rank.min(values.len() - 1)]
}

/// Sends `requests` POSTs of `payloads` (round-robin) from `clients` connections at once,
/// stopping early at `limit`.
pub fn run(
    addr: SocketAddr,
    payloads: &[Vec<u8>],
    clients: usize,
    requests: usize,
    limit: Duration,
) -> Load {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let results: Vec<Answered> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|_| scope.spawn(|| client(addr, payloads, &next, requests, started + limit)))
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap_or_default())
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let sorted = |pick: fn(&Answered) -> &Vec<f64>| {
        let mut all: Vec<f64> = results.iter().flat_map(|r| pick(r).clone()).collect();
        all.sort_by(f64::total_cmp);
        all
    };
    let latencies_ms = sorted(|r| &r.ok_ms);
    let refused_ms = sorted(|r| &r.refused_ms);
    Load {
        ok: latencies_ms.len(),
        errors: results.iter().map(|r| r.errors).sum(),
        seconds,
        latencies_ms,
        refused_ms,
    }
}

/// What one client saw: latencies of answers and of refusals (503), and other failures.
#[derive(Default)]
struct Answered {
    ok_ms: Vec<f64>,
    refused_ms: Vec<f64>,
    errors: usize,
}

/// One client: takes request numbers until they run out or time does; what it saw.
fn client(
    addr: SocketAddr,
    payloads: &[Vec<u8>],
    next: &AtomicUsize,
    requests: usize,
    deadline: Instant,
) -> Answered {
    let mut seen = Answered::default();
    let mut connection = None;
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= requests || Instant::now() > deadline {
            return seen;
        }
        let payload = &payloads[index % payloads.len()];
        let started = Instant::now();
        let stream = match connection.take() {
            Some(stream) => Ok(stream),
            None => TcpStream::connect(addr).and_then(|stream| {
                stream.set_nodelay(true)?;
                Ok(BufReader::new(stream))
            }),
        };
        let answered = stream.and_then(|mut s| post(&mut s, payload).map(|answer| (answer, s)));
        let millis = started.elapsed().as_secs_f64() * 1e3;
        match answered {
            Ok(((status, _, close), stream)) => {
                match status {
                    200 => seen.ok_ms.push(millis),
                    503 => seen.refused_ms.push(millis),
                    _ => seen.errors += 1,
                }
                // A server that says it closes the connection is taken at its word.
                connection = (!close).then_some(stream);
            }
            Err(_) => seen.errors += 1,
        }
    }
}

/// One `POST /api/classify` of `payload` on a new connection: the answer's status and body.
pub fn classify_once(addr: SocketAddr, payload: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let (status, body, _) = post(&mut BufReader::new(TcpStream::connect(addr)?), payload)?;
    Ok((status, body))
}

/// One `POST /api/classify` on a keep-alive connection: the answer's status and body, and
/// whether the server closes the connection after it.
fn post(stream: &mut BufReader<TcpStream>, body: &[u8]) -> std::io::Result<(u16, Vec<u8>, bool)> {
    let mut request = format!(
        "POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    // One write: the server sees the whole request at once.
    stream.get_mut().write_all(&request)?;
    read_answer(stream)
}

/// One `GET path` on a new connection: the answer's status and body.
pub fn get_once(addr: SocketAddr, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = BufReader::new(TcpStream::connect(addr)?);
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.get_mut().write_all(request.as_bytes())?;
    let (status, body, _) = read_answer(&mut stream)?;
    Ok((status, body))
}

/// An HTTP/1.1 answer's status and body (sized by its `Content-Length`), and whether it says
/// `Connection: close`.
fn read_answer(stream: &mut BufReader<TcpStream>) -> std::io::Result<(u16, Vec<u8>, bool)> {
    let mut line = String::new();
    stream.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {line:?}")))?;
    let (mut length, mut close) = (0, false);
    loop {
        line.clear();
        stream.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().unwrap_or(0);
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.trim().eq_ignore_ascii_case("close");
        }
    }
    let mut answer = vec![0; length];
    stream.read_exact(&mut answer)?;
    Ok((status, answer, close))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_read_from_the_sorted_latencies() {
        let load = Load {
            ok: 100,
            errors: 0,
            seconds: 2.0,
            latencies_ms: (1..=100).map(f64::from).collect(),
            refused_ms: vec![3.0],
        };
        assert_eq!(load.refused_percentile(0.99), 3.0);
        assert_eq!(load.rate(), 50.0);
        assert_eq!(load.percentile(0.5), 50.0);
        assert_eq!(load.percentile(0.99), 99.0);
        assert_eq!(load.percentile(1.0), 100.0);
    }
}
