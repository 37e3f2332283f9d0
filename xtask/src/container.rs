//! `cargo xtask container`: the `serve` image, `FROM scratch`: a static (musl) `serve` with
//! the shipped model built in, and nothing else. `--check` runs it and asks it to classify.

use crate::{cargo, workspace_root};
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The target whose binaries need no C library at run time.
const STATIC_TARGET: &str = "x86_64-unknown-linux-musl";
/// The largest image accepted: the binary is most of it.
const MAX_IMAGE_BYTES: u64 = 25_000_000;

#[derive(clap::Args)]
pub struct Args {
    /// The image's name.
    #[arg(long, default_value = "localhost/mnist-serve:latest")]
    tag: String,
    /// The container engine: podman, or docker.
    #[arg(long, default_value = "podman")]
    engine: String,
    /// Then run the image, wait for /readyz, classify a sample digit and stop it.
    #[arg(long)]
    check: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    cargo(&[
        "build".into(),
        "--quiet".into(),
        "--profile".into(),
        "container".into(),
        "--target".into(),
        STATIC_TARGET.into(),
        "--package".into(),
        "serve".into(),
    ])
    .context(format!(
        "the static build failed; the target installs with `rustup target add {STATIC_TARGET}`"
    ))?;
    let context = tempfile::tempdir()?;
    std::fs::copy(static_binary(), context.path().join("serve"))?;
    std::fs::copy(
        workspace_root().join("Containerfile"),
        context.path().join("Containerfile"),
    )?;
    let engine = Engine::new(&args.engine)?;
    let build = [
        "build",
        "--quiet",
        "--tag",
        &args.tag,
        "--file",
        "Containerfile",
        ".",
    ];
    engine.run(&build, Some(context.path()))?;
    let size: u64 = engine
        .output(&["image", "inspect", "--format", "{{.Size}}", &args.tag])?
        .trim()
        .parse()
        .context("the engine gave no image size")?;
    println!("{}: {:.1} MB", args.tag, size as f64 / 1e6);
    if size > MAX_IMAGE_BYTES {
        bail!("the image is {size} bytes, over {MAX_IMAGE_BYTES}");
    }
    if args.check {
        check(&engine, &args.tag)?;
    }
    Ok(())
}

/// Where cargo puts the static `serve`.
fn static_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    target.join(STATIC_TARGET).join("container").join("serve")
}

/// Runs the image on a free port of 127.0.0.1, waits for it to be ready, classifies the
/// sample seven, and stops it.
fn check(engine: &Engine, tag: &str) -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let publish = format!("127.0.0.1:{port}:8080");
    let id = engine.output(&["run", "--detach", "--rm", "--publish", &publish, tag])?;
    let id = id.trim().to_string();
    let result = ready_and_classifying(SocketAddr::from(([127, 0, 0, 1], port)));
    let stopped = engine.run(&["stop", "--time", "10", &id], None);
    result?;
    stopped?;
    println!("{tag}: ready, classified the sample seven, stopped");
    Ok(())
}

fn ready_and_classifying(addr: SocketAddr) -> anyhow::Result<()> {
    let started = Instant::now();
    while !matches!(crate::load::get_once(addr, "/readyz"), Ok((200, _))) {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the container was not ready within a minute");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let seven = std::fs::read(workspace_root().join("data/digits/seven-mnist.png"))?;
    let (status, body) = crate::load::classify_once(addr, &seven)?;
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if status != 200 || answer["digit"] != 7 {
        bail!(
            "the container answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

/// podman (or docker) as this machine needs it run.
struct Engine {
    program: String,
    /// podman's settings: its default runtime and rlimits fail on some machines' cgroups.
    settings: Option<tempfile::NamedTempFile>,
}

impl Engine {
    fn new(program: &str) -> anyhow::Result<Self> {
        let settings = match program {
            "podman" => {
                let file = tempfile::NamedTempFile::new()?;
                std::fs::write(
                    file.path(),
                    "[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = \"runc\"\n",
                )?;
                Some(file)
            }
            _ => None,
        };
        Ok(Self {
            program: program.to_string(),
            settings,
        })
    }

    fn command(&self, args: &[&str], dir: Option<&Path>) -> Command {
        let mut command = Command::new(&self.program);
        command.args(args);
        if let Some(settings) = &self.settings {
            command.env("CONTAINERS_CONF", settings.path());
        }
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        command
    }

    /// Runs `args` in `dir`; fails with the command when it fails.
    fn run(&self, args: &[&str], dir: Option<&Path>) -> anyhow::Result<()> {
        let status = self.command(args, dir).status().with_context(|| {
            format!(
                "cannot run {}; install it (Debian: podman runc)",
                self.program
            )
        })?;
        if !status.success() {
            bail!("`{} {}` failed ({status})", self.program, args.join(" "));
        }
        Ok(())
    }

    /// What `args` prints.
    fn output(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self
            .command(args, None)
            .output()
            .with_context(|| format!("cannot run {}", self.program))?;
        if !output.status.success() {
            bail!(
                "`{} {}` failed: {}",
                self.program,
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}
