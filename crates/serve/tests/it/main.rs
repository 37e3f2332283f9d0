//! The server's tests, as modules of one test binary: the API end to end over HTTP, and the
//! page in a real browser.

mod abuse;
mod api;
mod browser;
mod oip;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The workspace root, where the server runs from.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The digit a sample's file name starts with (`seven-mnist.png` → 7).
fn digit_of(path: &Path) -> usize {
    const NAMES: [&str; 10] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    let name = path.file_name().unwrap().to_str().unwrap();
    NAMES
        .iter()
        .position(|digit| name.starts_with(&format!("{digit}-")))
        .unwrap_or_else(|| panic!("{name} does not start with a digit's name"))
}

/// Every sample image in `data/digits`, sorted.
fn samples() -> Vec<PathBuf> {
    let mut samples: Vec<PathBuf> = std::fs::read_dir(root().join("data/digits"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e != "md"))
        .collect();
    samples.sort();
    assert!(samples.len() >= 8, "too few samples: {samples:?}");
    samples
}

/// A `serve` process on a free port of 127.0.0.1, stopped when dropped.
struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    url: String,
}

impl Server {
    fn start(extra: &[&str]) -> Self {
        Self::start_logging_to(extra, Stdio::null())
    }

    /// A server whose request log goes to `stderr`.
    fn start_logging_to(extra: &[&str], stderr: Stdio) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_serve"))
            .args(["--addr", "127.0.0.1:0"])
            .args(extra)
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the serve binary runs");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // "serving ... on http://127.0.0.1:PORT/ (...)"
        let url = first
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .trim_end_matches('/')
            .to_string();
        Self { child, url }
    }

    /// The server's process id.
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the process to end.
    fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
