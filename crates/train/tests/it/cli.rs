//! The `train` binary end to end: a real (small) training run, and every way a run is refused.

use crate::{assert_refused, root, text, train, train_command, train_into};
use std::path::Path;
use std::process::Output;

fn smoke_run(backend: &str, min_accuracy: f64) {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("run");
    let output = train(&[
        "--config",
        "configs/smoke.toml",
        "--backend",
        backend,
        "--model",
        artifacts.to_str().unwrap(),
    ]);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );

    // One readable line per epoch, no per-batch dumps.
    assert!(stdout.contains("epoch  1/1  train loss"), "{stdout}");
    assert!(stdout.lines().count() < 10, "too chatty: {stdout}");

    for file in [
        "model.bpk",
        "config.toml",
        "metrics.csv",
        "summary.json",
        "checkpoint/model-1.bpk",
        "curves.png",
    ] {
        assert!(artifacts.join(file).is_file(), "{file} missing");
    }
    let metrics = std::fs::read_to_string(artifacts.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = metrics.lines().collect();
    assert!(
        lines[0]
            .starts_with("epoch,train_loss,train_accuracy,held_out_loss,held_out_accuracy,seconds")
    );
    assert_eq!(lines.len(), 2, "{metrics}");

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(artifacts.join("summary.json")).unwrap())
            .unwrap();
    let accuracy = summary["test_accuracy"].as_f64().unwrap();
    assert!(
        accuracy >= min_accuracy,
        "test accuracy {accuracy}% < {min_accuracy}%"
    );
    assert_eq!(summary["epochs"], 1);
    assert_eq!(summary["backend"], backend);
    assert_eq!(summary["train_images"], 10000);
    assert_eq!(summary["test_images"], 1000);

    // The Learner's own test accuracy for the last epoch agrees with the saved model's.
    let last: Vec<f64> = lines[1].split(',').map(|v| v.parse().unwrap()).collect();
    assert!(
        (last[4] - accuracy).abs() < 0.01,
        "metrics.csv {} vs summary {accuracy}",
        last[4]
    );

    // The resolved config is complete and loads as a config again.
    let saved = train::RunConfig::load(&artifacts.join("config.toml")).unwrap();
    assert_eq!(saved.data.train_limit, Some(10000));
    assert!(
        std::fs::read_to_string(artifacts.join("config.toml"))
            .unwrap()
            .contains("epsilon")
    );
}

#[test]
fn smoke_training_on_flex_reaches_its_accuracy() {
    smoke_run("flex", 80.0);
}

#[cfg(feature = "ndarray")]
#[test]
fn smoke_training_on_ndarray_reaches_its_accuracy() {
    smoke_run("ndarray", 80.0);
}

#[test]
fn a_bad_toml_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("typo.toml");
    std::fs::write(&config, "[training]\nepoch = 3\n").unwrap();
    let artifacts = dir.path().join("run");
    let output = train_into(&config, &artifacts, &[]);
    assert_refused(&output, &["typo.toml", "training", "epoch"]);
    assert!(
        !artifacts.exists(),
        "nothing is written for a refused config"
    );

    std::fs::write(&config, "[optimizer]\nlearning_rate = -1.0\n").unwrap();
    let output = train_into(&config, &artifacts, &[]);
    assert_refused(
        &output,
        &["typo.toml", "optimizer.learning_rate", "positive"],
    );
}

#[test]
fn a_missing_config_file_is_named() {
    let output = train(&["--config", "configs/no-such.toml"]);
    assert_refused(&output, &["configs/no-such.toml"]);
}

#[test]
fn a_zero_epoch_override_is_refused() {
    let output = train(&["--config", "configs/smoke.toml", "--epochs", "0"]);
    assert_refused(&output, &["--epochs", "training.epochs"]);
}

#[test]
fn an_unknown_backend_is_refused() {
    let output = train(&["--backend", "cuda"]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("unknown backend `cuda`"));
}

/// Trains, inside `dir`, a tiny run reading MNIST from `data_dir`.
fn train_on_data_dir(dir: &Path, data_dir: &Path) -> Output {
    let config = dir.join("smoke.toml");
    std::fs::write(
        &config,
        format!(
            "[training]\nepochs = 1\n[data]\ndir = {:?}\ntrain_limit = 500\n",
            data_dir
        ),
    )
    .unwrap();
    let run = dir.join("run");
    train_into(&config, &run, &[])
}

#[test]
fn missing_data_is_named_with_where_to_put_it() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let output = train_on_data_dir(dir.path(), &empty);
    assert_refused(
        &output,
        &["train-images-idx3-ubyte.gz", "not found", "--download"],
    );
}

#[test]
fn corrupt_data_fails_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mnist");
    std::fs::create_dir(&data).unwrap();
    let real = root().join("data/mnist");
    for name in [
        "train-images-idx3-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::os::unix::fs::symlink(real.join(name), data.join(name)).unwrap();
    }
    // An uncompressed label file with one label changed: valid IDX, wrong checksum.
    let mut labels = vec![0, 0, 8, 1, 0, 0, 0xea, 0x60];
    labels.extend(std::iter::repeat_n(3u8, 60_000));
    std::fs::write(data.join("train-labels-idx1-ubyte"), labels).unwrap();
    let output = train_on_data_dir(dir.path(), &data);
    assert_refused(&output, &["train-labels-idx1-ubyte", "checksum mismatch"]);
}

#[test]
fn an_unwritable_run_dir_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let run = file.join("run");
    let output = train(&[
        "--config",
        "configs/smoke.toml",
        "--model",
        run.to_str().unwrap(),
    ]);
    assert_refused(&output, &[run.to_str().unwrap()]);
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_without_any_adapter_fails_fast_with_one_line() {
    let started = std::time::Instant::now();
    let output = crate::train_command(&["--config", "configs/smoke.toml", "--backend", "wgpu"])
        // Hide every Vulkan driver and every EGL (OpenGL) vendor from the loaders.
        .env("VK_ICD_FILENAMES", "/nonexistent")
        .env("VK_DRIVER_FILES", "/nonexistent")
        .env("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent")
        .output()
        .unwrap();
    assert_refused(&output, &["no usable GPU adapter", "--backend flex"]);
    assert!(
        started.elapsed().as_secs() < 30,
        "took {:?}",
        started.elapsed()
    );
}

/// A build without a backend names the feature that adds it, before any work.
#[cfg(not(all(feature = "wgpu", feature = "ndarray")))]
#[test]
fn a_backend_left_out_of_the_build_says_how_to_get_it() {
    let missing = if cfg!(feature = "wgpu") {
        "ndarray"
    } else {
        "wgpu"
    };
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = train_into(
        Path::new("configs/smoke.toml"),
        &run,
        &["--backend", missing],
    );
    assert_refused(
        &output,
        &[
            &format!("no {missing} backend"),
            &format!("--features {missing}"),
        ],
    );
    assert!(!run.join("config.toml").exists(), "nothing is written");
}

#[test]
fn a_diverging_loss_stops_the_run_with_a_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = train_into(
        Path::new("configs/smoke.toml"),
        &run,
        &["--set", "optimizer.learning_rate=1e12"],
    );
    assert_refused(&output, &["training loss became NaN", "learning_rate"]);
    assert!(
        !run.join("model.bpk").exists(),
        "no model is saved from a diverged run"
    );
}

#[test]
fn a_validation_split_keeps_the_test_set_for_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = train_into(
        Path::new("configs/smoke.toml"),
        &run,
        &["--set", "data.validation_images=2000"],
    );
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        stdout.contains("(8000 training, 2000 validation, 1000 test images)"),
        "{stdout}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["train_images"], 8000);
    assert_eq!(summary["validation_images"], 2000);
    assert_eq!(summary["test_images"], 1000);
    let accuracy = summary["test_accuracy"].as_f64().unwrap();
    assert!(accuracy > 75.0, "test accuracy {accuracy}%");
}

#[test]
fn a_missing_data_directory_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("elsewhere.toml");
    std::fs::write(&config, "[data]\ndir = \"/no/such/mnist\"\n").unwrap();
    let run = dir.path().join("run");
    let output = train_into(&config, &run, &[]);
    assert_refused(&output, &["elsewhere.toml", "data.dir", "/no/such/mnist"]);
    assert!(
        !run.exists(),
        "nothing is written before the settings are valid"
    );
}

#[test]
fn outliers_from_a_missing_font_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = train_into(
        Path::new("configs/smoke.toml"),
        &run,
        &[
            "--set",
            "outliers.font=no/such/font.ttf",
            "--set",
            "outliers.per_batch=16",
        ],
    );
    assert_refused(&output, &["outliers.font", "no/such/font.ttf"]);
    assert!(!run.exists(), "nothing is written for a refused config");
}

/// A run with outliers in its batches trains, and saves the rule its answers are judged by.
#[test]
fn a_run_with_outliers_saves_its_verdict_rule() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = train_into(
        Path::new("configs/smoke.toml"),
        &run,
        &[
            "--set",
            "outliers.scribbles=200",
            "--set",
            "outliers.font=assets/fonts/DejaVuSans.ttf",
            "--set",
            "outliers.per_batch=16",
            "--set",
            "verdict.digit_at_least=0.6",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let saved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(saved.contains("[outliers]\nper_batch = 16"), "{saved}");
    assert!(saved.contains("[verdict]\ndigit_at_least = 0.6"), "{saved}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let accuracy = summary["test_accuracy"].as_f64().unwrap();
    assert!(accuracy > 75.0, "test accuracy {accuracy}%");
}

/// Training waits for each batch, which another thread distorts with rayon's workers: with
/// one worker, the training loop must not be the one holding it. (It did once: this run then
/// never ended.)
#[test]
fn distorted_batches_train_with_a_single_worker_thread() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut child = train_command(&[
        "--config",
        "configs/default.toml",
        "--model",
        run.to_str().unwrap(),
        "--set",
        "training.epochs=1",
        "--set",
        "data.train_limit=1000",
        "--set",
        "data.test_limit=1000",
    ])
    .env("RAYON_NUM_THREADS", "1")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("the train binary starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("the run can be waited on") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let status = status.expect("a one-epoch run on 1,000 images ends within two minutes");
    assert!(status.success());
    assert!(run.join("model.bpk").exists());
}

/// The README's transcript is what a fresh clone prints: the default recipe's seed 3 ends at
/// the accuracy and loss the README shows (the seconds are the machine's own). The transcript
/// comes from a CPU with AVX-512; one without it ends elsewhere in the last digits, and the
/// README says where, so each kind of CPU is held to its own figures exactly.
#[test]
fn the_default_recipe_ends_as_the_readme_says() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let quoted = match has_avx512() {
        true => readme
            .lines()
            .skip_while(|line| *line != "<!-- transcript -->")
            .find(|line| line.starts_with("test accuracy "))
            .expect("the README's transcript ends with the final score")
            .to_string(),
        false => readme
            .split_once("without AVX-512")
            .and_then(|(_, after)| after.split('`').nth(1))
            .expect("the README quotes where a CPU without AVX-512 ends, in backticks")
            .to_string(),
    };
    let dir = tempfile::tempdir().unwrap();
    let output = train_into(
        Path::new("configs/default.toml"),
        &dir.path().join("default"),
        &[],
    );
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let last = stdout.lines().last().unwrap_or_default();
    // `test accuracy 99.39% (loss 0.0197) after 10 epochs`, without the seconds.
    let figures = |line: &str| line.split(" in ").next().unwrap_or_default().to_string();
    assert_eq!(figures(last), figures(&quoted), "{stdout}");
}

/// Whether the fused kernels run their AVX-512 build here (see `model`'s `simd`).
fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// `train | head -1`: the reader goes away after the first line, and the run still ends
/// with its model saved.
#[test]
fn training_goes_on_when_its_reader_goes_away() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut child = crate::train_command(&[
        "--config",
        "configs/smoke.toml",
        "--model",
        run.to_str().unwrap(),
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("training"), "{first}");
    // The pipe's reading end is closed here.
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(!text(&output.stderr).contains("panicked"));
    assert!(run.join("model.bpk").is_file());
}
