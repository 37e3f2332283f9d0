//! `bench --serve`'s hostile rows: good clients beside idle and trickling connections, image
//! bombs, more requests than the server admits, reloads under load, and SIGTERM with slow
//! clients connected; each with the server's peak memory.

use crate::binary;
use crate::load::{self, Load};
use anyhow::{Context, bail};
use std::io::{BufRead, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `serve` process on a free port.
struct Served {
    child: Child,
    addr: SocketAddr,
}

impl Served {
    fn start(args: &[&str]) -> anyhow::Result<Self> {
        let mut child = Command::new(binary("serve"))
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .current_dir(crate::workspace_root())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start serve")?;
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut first)?;
        let addr = first
            .split_whitespace()
            .find_map(|word| word.strip_prefix("http://"))
            .and_then(|address| address.trim_end_matches('/').parse().ok())
            .with_context(|| format!("serve printed no address: {first:?}"))?;
        Ok(Self { child, addr })
    }

    /// The most memory the process has held, from the kernel's `VmHWM`.
    fn peak_megabytes(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()));
        status
            .ok()
            .and_then(|text| {
                let line = text.lines().find(|line| line.starts_with("VmHWM:"))?;
                line.split_whitespace().nth(1)?.parse::<f64>().ok()
            })
            .map_or(f64::NAN, |kb| kb * 1024.0 / 1e6)
    }

    fn signal(&self, name: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -{name} failed");
        }
        Ok(())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `count` connections that send a request head promising a 100 KB body, then one byte a
/// second of it from a thread of their own, until `stop`.
struct Tricklers {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Tricklers {
    fn start(addr: SocketAddr, count: usize) -> anyhow::Result<Self> {
        let head = b"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n\
                     Content-Length: 100000\r\n\r\n";
        let mut streams = Vec::with_capacity(count);
        for _ in 0..count {
            let mut stream = TcpStream::connect(addr)?;
            stream.write_all(head)?;
            streams.push(stream);
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                for stream in &mut streams {
                    let _ = stream.write_all(b"x");
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Tricklers {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `| condition | result | peak memory |` rows.
pub fn table(payloads: &[Vec<u8>], requests: usize) -> anyhow::Result<Vec<String>> {
    let mut rows = vec![
        "| serve under abuse | classifications/s | p50 / p99 | failed | peak memory |".into(),
        "| --- | --- | --- | --- | --- |".to_string(),
    ];
    rows.extend(crowded(payloads, requests)?);
    rows.push(bombs(payloads)?);
    rows.push(over_capacity(payloads, requests)?);
    rows.extend(reloads(payloads, requests)?);
    rows.push(drain()?);
    Ok(rows)
}

fn load_row(what: &str, load: &Load, peak: f64) -> String {
    format!(
        "| {what} | {:.0} | {:.1} / {:.1} ms | {} | {peak:.0} MB |",
        load.rate(),
        load.percentile(0.5),
        load.percentile(0.99),
        load.errors
    )
}

/// 64 good clients alone, then beside 1,000 idle connections and 100 trickling bodies.
fn crowded(payloads: &[Vec<u8>], requests: usize) -> anyhow::Result<Vec<String>> {
    let served = Served::start(&[])?;
    let limit = Duration::from_secs(60);
    load::run(served.addr, payloads, 8, 500, limit);
    let alone = load::run(served.addr, payloads, 64, requests, limit);
    let alone_peak = served.peak_megabytes();
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(served.addr))
        .collect::<Result<_, _>>()?;
    let tricklers = Tricklers::start(served.addr, 100)?;
    std::thread::sleep(Duration::from_millis(500));
    let crowded = load::run(served.addr, payloads, 64, requests, limit);
    let peak = served.peak_megabytes();
    drop((idle, tricklers));
    Ok(vec![
        load_row("64 clients, the sample digits", &alone, alone_peak),
        load_row(
            "the same beside 1,000 idle connections and 100 bodies trickling at 1 byte/s",
            &crowded,
            peak,
        ),
    ])
}

/// The 35-byte GIF claiming 6000 × 6000 pixels and a 0.5 MB grey+alpha PNG claiming
/// 16384 × 16384, 64 at a time, each connection closed right after sending; then a good
/// request.
fn bombs(payloads: &[Vec<u8>]) -> anyhow::Result<String> {
    let served = Served::start(&[])?;
    let bombs = [gif_bomb(), png_bomb()];
    let started = Instant::now();
    for round in 0..10 {
        std::thread::scope(|scope| {
            for client in 0..64 {
                let bomb = &bombs[(round + client) % 2];
                scope.spawn(move || {
                    // Abandoned: sent, then hung up on without reading the answer.
                    if let Ok(mut stream) = TcpStream::connect(served.addr) {
                        let head = format!(
                            "POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                             Content-Length: {}\r\n\r\n",
                            bomb.len()
                        );
                        let _ = stream.write_all(head.as_bytes());
                        let _ = stream.write_all(bomb);
                    }
                });
            }
        });
    }
    let seconds = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let (status, _) = load::classify_once(served.addr, &payloads[0])?;
    Ok(format!(
        "| 640 image bombs (a 35-byte GIF, a 0.5 MB PNG), 64 at a time, abandoned | {:.0} bombs/s \
         | then a good request: {status} | {} | {:.0} MB |",
        640.0 / seconds,
        usize::from(status != 200),
        served.peak_megabytes()
    ))
}

/// A GIF whose screen claims 6000 × 6000 pixels, in 35 bytes.
fn gif_bomb() -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend(6000u16.to_le_bytes());
    gif.extend(6000u16.to_le_bytes());
    gif.extend([0x80, 0, 0, 0xff, 0xff, 0xff, 0, 0, 0, b',']);
    gif.extend([0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4c, 1, 0, b';']);
    gif
}

/// A grey+alpha PNG of 16384 × 16384 zero pixels, which deflate shrinks to about 0.5 MB.
fn png_bomb() -> Vec<u8> {
    use flate2::{Compression, write::ZlibEncoder};
    let side = 16_384u32;
    let mut deflate = ZlibEncoder::new(Vec::new(), Compression::best());
    // Each row: filter type 0, then two zero bytes (grey, alpha) per pixel.
    let row = vec![0u8; 1 + 2 * side as usize];
    for _ in 0..side {
        deflate.write_all(&row).expect("writing to memory");
    }
    let data = deflate.finish().expect("writing to memory");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend(side.to_be_bytes());
    header.extend(side.to_be_bytes());
    header.extend([8, 4, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &data);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// A PNG chunk: length, type, data, CRC of type and data.
fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(kind);
    out.extend(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend(crc.sum().to_be_bytes());
}

/// 64 clients against a server admitting 8 requests, its 8 places held by slow uploads: how
/// fast the excess is turned away.
fn over_capacity(payloads: &[Vec<u8>], requests: usize) -> anyhow::Result<String> {
    let served = Served::start(&["--max-in-flight", "8"])?;
    let holders = Tricklers::start(served.addr, 8)?;
    std::thread::sleep(Duration::from_millis(500));
    let load = load::run(served.addr, payloads, 64, requests, Duration::from_secs(60));
    drop(holders);
    Ok(format!(
        "| 64 clients, `--max-in-flight 8` held by 8 slow uploads | {} refused with 503 \
         ({:.0} % of {requests}) | {:.2} / {:.2} ms to the 503 | {} | {:.0} MB |",
        load.refused_ms.len(),
        100.0 * load.refused_ms.len() as f64 / requests as f64,
        load.refused_percentile(0.5),
        load.refused_percentile(0.99),
        load.errors,
        served.peak_megabytes()
    ))
}

/// 10 SIGHUP reloads while 64 clients are served, then a damaged model on reload.
fn reloads(payloads: &[Vec<u8>], requests: usize) -> anyhow::Result<Vec<String>> {
    let run = tempfile::tempdir()?;
    let shipped = crate::workspace_root().join("crates/infer/model");
    for file in [
        "model.bpk",
        "model.bpk.sha256",
        "config.toml",
        "summary.json",
    ] {
        std::fs::copy(shipped.join(file), run.path().join(file))?;
    }
    let model = run.path().to_string_lossy().into_owned();
    let served = Served::start(&["--model", &model])?;
    let limit = Duration::from_secs(120);
    let load = std::thread::scope(|scope| {
        let load = scope.spawn(|| load::run(served.addr, payloads, 64, requests * 4, limit));
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(150));
            let _ = served.signal("HUP");
        }
        load.join()
    })
    .map_err(|_| anyhow::anyhow!("the load panicked"))?;
    let ok_reloads = reload_count(served.addr, "ok")?;
    let record = run.path().join("model.bpk");
    let mut bytes = std::fs::read(&record)?;
    let at = bytes.len() - 16;
    bytes[at] ^= 0x40;
    std::fs::write(&record, &bytes)?;
    served.signal("HUP")?;
    std::thread::sleep(Duration::from_secs(2));
    let failed = reload_count(served.addr, "failed")?;
    let after = load::run(served.addr, payloads, 8, 200, limit);
    Ok(vec![
        load_row(
            &format!("64 clients through 10 SIGHUP reloads ({ok_reloads} counted ok)"),
            &load,
            served.peak_megabytes(),
        ),
        load_row(
            &format!("then a damaged model on reload ({failed} refused): the old one serves"),
            &after,
            served.peak_megabytes(),
        ),
    ])
}

/// `model_reloads_total{result=...}` from `/metrics`.
fn reload_count(addr: SocketAddr, result: &str) -> anyhow::Result<u64> {
    let (_, body) = load::get_once(addr, "/metrics")?;
    let text = String::from_utf8_lossy(&body);
    let prefix = format!("model_reloads_total{{result=\"{result}\"}} ");
    Ok(text
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0))
}

/// SIGTERM while 100 clients trickle bodies: how long until the process exits, and how.
fn drain() -> anyhow::Result<String> {
    let mut served = Served::start(&[])?;
    let tricklers = Tricklers::start(served.addr, 100)?;
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    served.signal("TERM")?;
    let status = served.child.wait()?;
    let seconds = started.elapsed().as_secs_f64();
    drop(tricklers);
    Ok(format!(
        "| SIGTERM with 100 bodies trickling (`--drain-timeout 8`) | exited with status {} \
         after {seconds:.1} s | | | |",
        status
            .code()
            .map_or_else(|| status.to_string(), |code| code.to_string())
    ))
}
