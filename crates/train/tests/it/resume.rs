//! Interrupted runs: killed outright or stopped with Ctrl-C, then resumed to the end.

use crate::{text, train_command, train_into};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// Trains `configs/smoke.toml` into `run`, with `extra` arguments, to the end.
fn smoke_run_into(run: &Path, extra: &[&str]) -> Output {
    train_into(Path::new("configs/smoke.toml"), run, extra)
}

/// Three epochs of 30,000 images: a few seconds each on flex, long enough to interrupt.
fn three_epoch_config(dir: &Path) -> PathBuf {
    let config = dir.join("three.toml");
    std::fs::write(
        &config,
        "[training]\nepochs = 3\n[data]\ntrain_limit = 30000\ntest_limit = 1000\n",
    )
    .unwrap();
    config
}

/// Starts a three-epoch run in `dir` and returns once its first epoch is checkpointed.
fn start_after_first_epoch(dir: &Path) -> (Child, PathBuf) {
    let config = three_epoch_config(dir);
    let run = dir.join("run");
    let mut child = train_command(&[
        "--config",
        config.to_str().unwrap(),
        "--model",
        run.to_str().unwrap(),
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    wait_for(&run.join("checkpoint/scheduler-1.bpk"), &mut child);
    (child, run)
}

fn wait_for(path: &Path, child: &mut Child) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "training ended before {}",
            path.display()
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn epochs_in(run: &Path) -> Vec<usize> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap().parse().unwrap())
        .collect()
}

fn assert_finished(run: &Path, output: &Output) {
    assert!(
        output.status.success(),
        "{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    assert_eq!(epochs_in(run), vec![1, 2, 3], "every epoch once, in order");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["epochs"], 3);
    // The time of every epoch, the ones before the resume included.
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let seconds: f64 = metrics
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').nth(5)?.parse::<f64>().ok())
        .sum();
    let train_seconds = summary["train_seconds"].as_f64().unwrap();
    assert!(
        train_seconds >= 0.95 * seconds,
        "{train_seconds} s < the epochs' {seconds} s"
    );
    let accuracy = summary["test_accuracy"].as_f64().unwrap();
    assert!(accuracy > 90.0, "accuracy after resuming: {accuracy}%");
    infer::DigitClassifier::load(
        &infer::ModelSource::RunDir(run.to_path_buf()),
        burn::tensor::Device::flex(),
    )
    .expect("the final model loads");
}

#[test]
fn a_run_killed_mid_epoch_resumes_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, run) = start_after_first_epoch(dir.path());
    std::thread::sleep(Duration::from_millis(600));
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    assert!(!run.join("model.bpk").exists(), "killed before the end");

    let output = train_command(&["--resume", "--model", run.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert!(stdout.contains("resuming"), "{stdout}");
    // The recipe a resumed run follows is the one saved with it, and it says so.
    let saved = run.join("config.toml");
    assert!(
        stdout.contains(&format!("training {} on", saved.display())),
        "{stdout}"
    );
    assert_finished(&run, &output);
}

/// Stops a run after its first epoch with `signal`, checks that it says how to resume, and
/// resumes it to the end.
fn stop_with_signal_and_resume(signal: &str, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (child, run) = start_after_first_epoch(dir.path());
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = text(&output.stderr);
    assert!(
        !output.status.success(),
        "an interrupted run is not a success"
    );
    assert!(
        stderr.contains(&format!("training stopped ({name})")),
        "{stderr}"
    );
    assert!(
        stderr.contains("training again with --resume --model"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let output = train_command(&["--resume", "--model", run.to_str().unwrap()])
        .output()
        .unwrap();
    assert_finished(&run, &output);
}

#[test]
fn ctrl_c_stops_cleanly_and_says_how_to_resume() {
    stop_with_signal_and_resume("-INT", "Ctrl-C");
}

/// What service managers and containers send to stop a process.
#[test]
fn sigterm_stops_cleanly_and_says_how_to_resume() {
    stop_with_signal_and_resume("-TERM", "SIGTERM");
}

#[test]
fn the_same_config_gives_the_same_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let learned = |name: &str| {
        let run = dir.path().join(name);
        let output = smoke_run_into(&run, &[]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        // Everything but the timing columns.
        std::fs::read_to_string(run.join("metrics.csv"))
            .unwrap()
            .lines()
            .map(|line| line.split(',').take(5).collect::<Vec<_>>().join(","))
            .collect::<Vec<_>>()
    };
    assert_eq!(learned("first"), learned("second"));
}

#[test]
fn settings_from_the_command_line_are_used_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = smoke_run_into(
        &run,
        &[
            "--set",
            "data.train_limit=2000",
            "--set",
            "training.batch_size=64",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let saved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        saved.contains("train_limit = 2000") && saved.contains("batch_size = 64"),
        "{saved}"
    );

    let output = train_command(&[
        "--config",
        "configs/smoke.toml",
        "--set",
        "optimizer.learning_rate=-1",
    ])
    .output()
    .unwrap();
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--set optimizer.learning_rate=-1") && stderr.contains("positive"),
        "{stderr}"
    );
}

#[test]
fn resuming_with_a_config_that_does_not_fit_the_checkpoint_names_both() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = smoke_run_into(&run, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let config = run.join("config.toml");
    let edited = std::fs::read_to_string(&config)
        .unwrap()
        .replace("conv1_channels = 10", "conv1_channels = 12");
    std::fs::write(&config, edited).unwrap();

    let output = train_command(&[
        "--resume",
        "--epochs",
        "2",
        "--model",
        run.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("model-1.bpk")
            && stderr.contains("config.toml")
            && stderr.contains("does not match"),
        "{stderr}"
    );
}
