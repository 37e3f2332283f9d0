//! The `infer` binary end to end, with the shipped model and with run directories.

use crate::{root, text};
use data::{MnistDataset, Split};
use infer::{DigitClassifier, ModelSource};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One of this crate's binaries, run in the workspace root.
fn run_binary(binary: &str, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("{binary}: {e}"))
}

fn infer(args: &[&str]) -> Output {
    run_binary(env!("CARGO_BIN_EXE_infer"), args)
}

fn eval(args: &[&str]) -> Output {
    run_binary(env!("CARGO_BIN_EXE_eval"), args)
}

const DIGIT_NAMES: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];

#[test]
fn the_shipped_model_names_every_sample_digit() {
    let mut samples: Vec<PathBuf> = std::fs::read_dir(root().join("data/digits"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_none_or(|e| e != "md"))
        .collect();
    samples.sort();
    assert!(samples.len() >= 5, "too few samples: {samples:?}");
    for sample in samples {
        let name = sample.file_name().unwrap().to_str().unwrap();
        let expected = DIGIT_NAMES
            .iter()
            .position(|digit| name.starts_with(&format!("{digit}-")))
            .unwrap_or_else(|| panic!("{name} does not start with a digit's name"));
        let output = infer(&[sample.to_str().unwrap()]);
        let stdout = text(&output.stdout);
        assert!(output.status.success(), "{name}: {}", text(&output.stderr));
        let first = stdout.lines().next().unwrap();
        let digit = first
            .rsplit_once(": ")
            .unwrap()
            .1
            .split(' ')
            .next()
            .unwrap();
        assert_eq!(digit, expected.to_string(), "{name}: {stdout}");
        // Ten probabilities that sum to one.
        let probabilities: Vec<f64> = stdout
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .filter_map(|field| field.parse().ok())
            .collect();
        assert_eq!(probabilities.len(), 10, "{stdout}");
        assert!(
            (probabilities.iter().sum::<f64>() - 1.0).abs() < 2e-3,
            "{stdout}"
        );
    }
}

/// A run directory holding the shipped weights and a config saying which network they fit.
fn run_dir(dir: &Path, conv1_channels: usize) -> PathBuf {
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    for name in ["model.bpk", "model.bpk.sha256"] {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("model")
            .join(name);
        std::fs::copy(shipped, run.join(name)).unwrap();
    }
    // The shipped model's own recipe (its input standardisation included), with the first
    // layer's width as asked.
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("model/config.toml"))
            .unwrap();
    assert!(shipped.contains("conv1_channels = 10\n"));
    let config = shipped.replace(
        "conv1_channels = 10\n",
        &format!("conv1_channels = {conv1_channels}\n"),
    );
    std::fs::write(run.join("config.toml"), config).unwrap();
    run
}

#[test]
fn a_run_directory_is_loaded_with_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir(dir.path(), 10);
    // `--artifact-dir`, the flag's former name in `train`, `eval` and `export`, still works.
    for flag in ["--model", "--artifact-dir"] {
        let output = infer(&[flag, run.to_str().unwrap(), "data/digits/seven-mnist.png"]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(text(&output.stdout).starts_with("data/digits/seven-mnist.png: 7 "));
    }
}

fn assert_one_line_error(output: &Output, needles: &[&str]) {
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} missing from {stderr}");
    }
}

#[test]
fn a_record_that_does_not_fit_the_config_names_both() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir(dir.path(), 12);
    let output = infer(&[
        "--model",
        run.to_str().unwrap(),
        "data/digits/seven-mnist.png",
    ]);
    assert_one_line_error(&output, &["model.bpk", "config.toml", "does not match"]);
}

#[test]
fn a_missing_model_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let output = infer(&[
        "--model",
        dir.path().to_str().unwrap(),
        "data/digits/seven-mnist.png",
    ]);
    assert_one_line_error(&output, &["no training run here", "train --model"]);

    let run = run_dir(dir.path(), 10);
    std::fs::remove_file(run.join("model.bpk")).unwrap();
    let output = infer(&[
        "--model",
        run.to_str().unwrap(),
        "data/digits/seven-mnist.png",
    ]);
    assert_one_line_error(&output, &["model.bpk", "not found"]);
}

#[test]
fn a_corrupt_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir(dir.path(), 10);
    let bytes = std::fs::read(run.join("model.bpk")).unwrap();
    std::fs::write(run.join("model.bpk"), &bytes[..bytes.len() / 2]).unwrap();
    let output = infer(&[
        "--model",
        run.to_str().unwrap(),
        "data/digits/seven-mnist.png",
    ]);
    assert_one_line_error(&output, &["model.bpk"]);
}

#[test]
fn a_bad_image_fails_alone_and_the_others_are_classified() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\n not really").unwrap();
    let output = infer(&[broken.to_str().unwrap(), "data/digits/seven-mnist.png"]);
    assert_one_line_error(&output, &["broken.png"]);
    assert!(text(&output.stdout).contains("seven-mnist.png: 7"));
}

#[test]
fn directories_and_json_lines_with_per_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("data/digits/seven-mnist.png"),
        dir.path().join("a.png"),
    )
    .unwrap();
    std::fs::write(dir.path().join("b.png"), b"").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not an image, not looked at").unwrap();
    let output = infer(&["--json", dir.path().to_str().unwrap()]);
    assert!(
        !output.status.success(),
        "a failed file makes the exit status non-zero"
    );
    let lines: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["digit"], 7);
    assert!(lines[0]["confidence"].as_f64().unwrap() > 0.9);
    assert_eq!(lines[0]["probabilities"].as_array().unwrap().len(), 10);
    assert!(lines[0]["file"].as_str().unwrap().ends_with("a.png"));
    assert!(lines[1]["file"].as_str().unwrap().ends_with("b.png"));
    assert!(lines[1]["error"].as_str().unwrap().contains("empty file"));
}

#[test]
fn a_directory_without_images_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("readme.txt"), b"hi").unwrap();
    let output = infer(&[dir.path().to_str().unwrap()]);
    assert_one_line_error(&output, &["no images"]);
}

#[test]
fn top_k_and_saved_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("seen");
    let output = infer(&[
        "--top",
        "3",
        "--save-preprocessed",
        saved.to_str().unwrap(),
        "data/digits/two-paper.png",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let ranked = stdout.lines().nth(1).unwrap();
    assert_eq!(ranked.matches('%').count(), 3, "{stdout}");
    assert!(ranked.trim_start().starts_with("2: "), "{stdout}");
    let written: Vec<_> = std::fs::read_dir(&saved).unwrap().collect();
    assert_eq!(written.len(), 1);
    let image = image::open(written[0].as_ref().unwrap().path()).unwrap();
    assert_eq!((image.width(), image.height()), (28, 28));
}

#[test]
fn eval_scores_a_run_on_the_test_set() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir(dir.path(), 10);
    let output = eval(&["--model", run.to_str().unwrap()]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let accuracy: f64 = stdout
        .split("test accuracy ")
        .nth(1)
        .and_then(|rest| rest.split('%').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no accuracy in {stdout}"));
    assert!(accuracy > 98.0, "{stdout}");
    assert!(stdout.contains("(10000 images)"), "{stdout}");
    assert!(stdout.contains("precision  recall"), "{stdout}");
    let matrix_rows = stdout
        .lines()
        .skip_while(|line| !line.starts_with("confusion"))
        .skip(2)
        .take_while(|line| line.split_whitespace().count() == 11)
        .count();
    assert_eq!(matrix_rows, 10, "{stdout}");
    for figure in ["confusion.png", "misclassified.png"] {
        let image = image::open(run.join(figure)).unwrap();
        assert!(
            image.width() > 500 && image.height() > 300,
            "{figure} is too small"
        );
    }

    let mismatched = run_dir(&dir.path().join("other"), 12);
    let output = eval(&["--model", mismatched.to_str().unwrap()]);
    assert_one_line_error(&output, &["model.bpk", "config.toml", "does not match"]);
}

/// `eval` given a multi-seed run scores each seed and gives the spread; what belongs to one
/// model (figures, predictions) asks for one seed's run.
#[test]
fn eval_scores_every_seed_of_a_multi_seed_run() {
    let dir = tempfile::tempdir().unwrap();
    for seed in [2, 1] {
        let run = run_dir(&dir.path().join(format!("made-{seed}")), 10);
        std::fs::rename(run, dir.path().join(format!("seed-{seed}"))).unwrap();
    }
    let runs = dir.path().to_str().unwrap();
    let output = eval(&["--model", runs]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let seed_lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("seed ")).collect();
    assert_eq!(seed_lines.len(), 2, "{stdout}");
    assert!(
        seed_lines[0].starts_with("seed 1: test accuracy "),
        "{stdout}"
    );
    let accuracy = seed_lines[0]
        .split("accuracy ")
        .nth(1)
        .and_then(|rest| rest.split('%').next())
        .unwrap();
    // The same weights twice: no spread.
    let spread =
        format!("test accuracy over 2 seeds: {accuracy} ± 0.00 (min {accuracy}, max {accuracy})");
    assert!(stdout.contains(&spread), "{stdout}");

    let output = eval(&["--model", runs, "--figures", "figures"]);
    assert_one_line_error(&output, &["multi-seed run", "seed-1"]);
}

/// The figure for one kind of non-digit in `eval`'s output: `(AUROC, share passing)`.
fn separation_of(stdout: &str, kind: &str) -> (f64, f64) {
    let line = stdout
        .lines()
        .find(|line| line.trim_start().starts_with(kind))
        .unwrap_or_else(|| panic!("no {kind} in {stdout}"));
    let auroc = line
        .split("AUROC ")
        .nth(1)
        .and_then(|r| r.split(',').next());
    let passed = line.split(", ").nth(1).and_then(|r| r.split(' ').next());
    match (auroc.map(str::parse), passed.map(str::parse)) {
        (Some(Ok(auroc)), Some(Ok(passed))) => (auroc, passed),
        _ => panic!("{line}"),
    }
}

/// Typed letters and symbols score lower than digits more often than not, and eval says how
/// often: the figures out-of-distribution detection starts from.
#[test]
fn eval_measures_how_the_confidence_tells_digits_from_typed_letters() {
    let output = eval(&["--shipped", "--outlier-font", "assets/fonts/DejaVuSans.ttf"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let (auroc, passed) = separation_of(&stdout, "letters and symbols in DejaVuSans.ttf (73)");
    assert!(auroc > 0.6 && auroc <= 1.0, "{stdout}");
    assert!((0.0..=100.0).contains(&passed), "{stdout}");
    let output = eval(&["--shipped", "--outlier-font", "Cargo.toml"]);
    assert_one_line_error(&output, &["Cargo.toml", "not a font"]);
}

#[test]
#[ignore = "needs Fashion-MNIST (apt-get install dataset-fashion-mnist), as .ci/run installs it"]
fn eval_measures_how_the_confidence_tells_digits_from_fashion_mnist() {
    let output = eval(&["--shipped", "--outliers"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let (auroc, _) = separation_of(&stdout, "Fashion-MNIST's test images (10000)");
    assert!(auroc > 0.99 && auroc <= 1.0, "{stdout}");
    // The shipped model was trained to spread its answer over every digit for what is no
    // digit: most clothes, and many drawn shapes it never saw, are not called digits.
    for (kind, at_least) in [
        ("Fashion-MNIST's test images (10000)", 80.0),
        ("letters, symbols and shapes drawn as on the page", 30.0),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(kind))
            .unwrap();
        let digits: f64 = line
            .split("; ")
            .nth(1)
            .and_then(|shares| shares.split(" % digit").next())
            .and_then(|share| share.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        assert!(100.0 - digits >= at_least, "{line}");
    }
}

/// `--validation` scores the split a run held out and gives thresholds to choose from; a run
/// that held none out is told how to make one.
#[test]
fn eval_chooses_thresholds_on_a_runs_validation_split() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir(dir.path(), 10);
    let output = eval(&["--model", run.to_str().unwrap(), "--validation"]);
    assert_one_line_error(
        &output,
        &["config.toml", "no validation split", "validation_images"],
    );

    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    let config = config.replace("[data]\n", "[data]\nvalidation_images = 3000\n");
    std::fs::write(run.join("config.toml"), config).unwrap();
    let output = eval(&[
        "--model",
        run.to_str().unwrap(),
        "--validation",
        "--real-digits",
        "data/digits",
    ]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains("validation accuracy "), "{stdout}");
    assert!(stdout.contains("(3000 images)"), "{stdout}");
    let thresholds: Vec<f64> = stdout
        .lines()
        .filter_map(|line| line.split("of these digits: ").nth(1))
        .map(|value| value.parse().unwrap())
        .collect();
    assert_eq!(thresholds.len(), 3, "{stdout}");
    assert!(
        thresholds[0] <= thresholds[1] && thresholds[1] <= thresholds[2],
        "{stdout}"
    );
    assert!(
        stdout.contains("pictures of digits (8): 100.0 % digit"),
        "{stdout}"
    );
}

/// `infer DIR | head -1`: the reader goes away before the output is written.
#[test]
fn a_closed_pipe_ends_the_run_without_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_infer"))
        .arg("data/digits")
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the infer binary runs");
    // Closed before the model has even loaded, so every write meets a broken pipe.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.status.success(), "{stderr}");
}

/// Runs `command`, failing the test if it has not finished within a minute (a hang).
fn output_within_a_minute(command: &mut Command) -> Output {
    let mut child = command
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{command:?} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn make_fifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// A FIFO named like an image, alone or in a folder, would wait for a writer for ever.
#[cfg(unix)]
#[test]
fn a_fifo_or_device_is_refused_at_once_and_the_folder_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("data/digits/seven-mnist.png"),
        dir.path().join("a.png"),
    )
    .unwrap();
    make_fifo(&dir.path().join("x.png"));
    let output = output_within_a_minute(
        Command::new(env!("CARGO_BIN_EXE_infer"))
            .arg("--json")
            .arg(dir.path())
            .arg("/dev/zero"),
    );
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].contains("\"digit\":7"), "{stdout}");
    assert!(
        lines[1].contains("x.png") && lines[1].contains("a FIFO"),
        "{stdout}"
    );
    assert!(
        lines[2].contains("/dev/zero") && lines[2].contains("a device"),
        "{stdout}"
    );
    assert!(!output.status.success());
}

/// `export --to` a FIFO: refused, and the FIFO is still a FIFO (not replaced by a file).
#[cfg(unix)]
#[test]
fn export_never_replaces_a_special_file() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir(dir.path(), 10);
    let fifo = dir.path().join("model.safetensors");
    make_fifo(&fifo);
    let output = output_within_a_minute(
        Command::new(env!("CARGO_BIN_EXE_export"))
            .arg("--model")
            .arg(&run)
            .arg("--to")
            .arg(&fifo),
    );
    assert_one_line_error(&output, &["model.safetensors", "a FIFO"]);
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "{kind:?}");
}

/// A `model.bpk` with a flipped byte in its weights still parses, and would load as another
/// network; the checksum training writes beside it refuses it.
#[test]
fn a_damaged_model_is_refused_by_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir(dir.path(), 10);
    let record = run.join("model.bpk");
    let mut bytes = std::fs::read(&record).unwrap();
    data::write_with_checksum(&record, &bytes).unwrap();
    let sample = root().join("data/digits/seven-mnist.png");
    let args = ["--model", run.to_str().unwrap(), sample.to_str().unwrap()];
    assert!(infer(&args).status.success());
    // A byte in the last weights written (the classifier's), not in the record's framing.
    let at = bytes.len() - 16;
    bytes[at] ^= 0x40;
    std::fs::write(&record, &bytes).unwrap();
    assert_one_line_error(&infer(&args), &["model.bpk", "checksum", "damaged"]);
}

#[test]
fn a_model_without_its_checksum_is_refused_until_vouched_for() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir(dir.path(), 10);
    let sums = run.join("model.bpk.sha256");
    let kept = std::fs::read(&sums).unwrap();
    std::fs::remove_file(&sums).unwrap();
    let sample = root().join("data/digits/seven-mnist.png");
    let args = ["--model", run.to_str().unwrap(), sample.to_str().unwrap()];
    assert_one_line_error(
        &infer(&args),
        &[
            "model.bpk",
            "no checksum",
            "sha256sum model.bpk > model.bpk.sha256",
        ],
    );
    // What the message says to run, `sha256sum`'s own line, makes it load.
    std::fs::write(&sums, kept).unwrap();
    assert!(infer(&args).status.success());
}

/// What a newcomer meets before training anything: each message names the next step.
#[test]
fn a_missing_run_says_how_to_make_one_or_use_the_shipped_model() {
    let dir = tempfile::tempdir().unwrap();
    let nothing = dir.path().join("nothing-here");
    let nothing = nothing.to_str().unwrap();
    // A config given where a run belongs.
    let output = infer(&[
        "--model",
        "configs/default.toml",
        "data/digits/seven-mnist.png",
    ]);
    assert_one_line_error(
        &output,
        &[
            "configs/default.toml: a file, not a training run's directory",
            "--config",
        ],
    );
    let to = dir.path().join("out.safetensors");
    let to = to.to_str().unwrap();
    for (binary, extra) in [
        (env!("CARGO_BIN_EXE_eval"), &[][..]),
        (env!("CARGO_BIN_EXE_export"), &["--to", to][..]),
    ] {
        let output = Command::new(binary)
            .args(["--model", nothing])
            .args(extra)
            .current_dir(root())
            .output()
            .unwrap();
        assert_one_line_error(
            &output,
            &[
                nothing,
                "no training run here",
                "train --model",
                "--shipped",
            ],
        );
    }
}

#[test]
fn eval_and_export_take_the_shipped_model() {
    let dir = tempfile::tempdir().unwrap();
    let output = eval(&["--shipped"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.starts_with("the shipped model on"), "{stdout}");
    // It scores what training recorded for the shipped model.
    let summary = std::fs::read_to_string(root().join("crates/infer/model/summary.json")).unwrap();
    let recorded: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let accuracy = format!(
        "test accuracy {:.2}%",
        recorded["test_accuracy"].as_f64().unwrap()
    );
    assert!(
        stdout.contains(&accuracy),
        "{accuracy} missing from {stdout}"
    );
    let to = dir.path().join("shipped.safetensors");
    let output = Command::new(env!("CARGO_BIN_EXE_export"))
        .args(["--shipped", "--to", to.to_str().unwrap()])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(to.is_file());
}

/// The format is the extension's: a name that promises another format is refused, and
/// nothing is written under it.
#[test]
fn export_refuses_a_file_name_of_another_format() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["model.pt", "model.onnx.txt", "model"] {
        let to = dir.path().join(name);
        let output = Command::new(env!("CARGO_BIN_EXE_export"))
            .args(["--shipped", "--to", to.to_str().unwrap()])
            .current_dir(root())
            .output()
            .unwrap();
        assert_one_line_error(&output, &[name, ".safetensors or .onnx", "--format"]);
        assert!(!to.exists(), "{name} was written");
    }
}

/// The digit `infer` names for `file` with the shipped model.
fn named_digit(file: &Path) -> String {
    let output = infer(&[file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    first.rsplit_once(": ").unwrap().1[..1].to_string()
}

/// A phone's photo stored upside down with an EXIF Orientation tag is read as it is shown: a
/// 6 stays a 6, not a 9. A print workflow's CMYK JPEG is read like any other.
#[test]
fn exif_orientation_and_cmyk_jpegs_are_read_as_viewers_show_them() {
    let fixtures = root().join("crates/infer/tests/fixtures");
    assert_eq!(named_digit(&fixtures.join("six-exif-rotated.jpg")), "6");
    assert_eq!(named_digit(&fixtures.join("five-cmyk.jpg")), "5");
}

/// A `model.bpk` that is a folder is named as one, not as a run still training.
#[test]
fn a_model_that_is_a_directory_is_named_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir(dir.path(), 10);
    std::fs::remove_file(run.join("model.bpk")).unwrap();
    std::fs::create_dir(run.join("model.bpk")).unwrap();
    let output = infer(&[
        "--model",
        run.to_str().unwrap(),
        "data/digits/seven-mnist.png",
    ]);
    assert_one_line_error(&output, &["model.bpk", "a directory"]);
}

/// Output that cannot be written is an error on one line, never a panic: `> /dev/full`.
#[cfg(unix)]
#[test]
fn a_full_stdout_is_a_one_line_error_in_every_binary() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("m.safetensors");
    for (binary, args) in [
        (env!("CARGO_BIN_EXE_eval"), vec!["--shipped"]),
        (
            env!("CARGO_BIN_EXE_export"),
            vec!["--shipped", "--to", to.to_str().unwrap()],
        ),
        (
            env!("CARGO_BIN_EXE_infer"),
            vec!["data/digits/seven-mnist.png"],
        ),
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let output = Command::new(binary)
            .args(&args)
            .current_dir(root())
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{binary}: {}",
            text(&output.stderr)
        );
        assert_one_line_error(&output, &["cannot write to stdout"]);
    }
}

/// A link planted under a name `--save-preprocessed` makes up is not written through.
#[cfg(unix)]
#[test]
fn a_link_planted_under_a_generated_name_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let precious = dir.path().join("precious.txt");
    std::fs::write(&precious, b"keep").unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink(&precious, out.join("0000-seven-mnist.png")).unwrap();
    let output = infer(&[
        "--save-preprocessed",
        out.to_str().unwrap(),
        "data/digits/seven-mnist.png",
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("a symbolic link"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(std::fs::read(&precious).unwrap(), b"keep");
}

/// `export --to model.onnx` writes a model that ONNX's checker accepts and that onnxruntime
/// runs to the same digit, and logits within 1e-4, as `infer` on all 10,000 MNIST test
/// images, at batch sizes 256 and 1.
#[test]
#[ignore = "needs the onnx feature and a Python with numpy, onnx and onnxruntime in \
            MNIST_BURN_PYTHON; .ci/run sets up that venv and runs \
            `cargo test --all-features -- --include-ignored`"]
fn the_onnx_export_runs_in_onnxruntime_as_infer_does() {
    use burn::data::dataset::Dataset;
    use burn::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("model.onnx");
    let output = Command::new(env!("CARGO_BIN_EXE_export"))
        .args(["--shipped", "--to"])
        .arg(&onnx)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    // The shipped network's own logits, on flex with its fused kernels.
    let test = MnistDataset::load(&root().join("data/mnist"), Split::Test).unwrap();
    let network = DigitClassifier::load(&ModelSource::Shipped, Device::flex()).unwrap();
    let (mut images, mut logits) = (Vec::new(), Vec::new());
    for start in (0..test.len()).step_by(500) {
        let items: Vec<_> = (start..(start + 500).min(test.len()))
            .map(|i| test.get(i).unwrap())
            .collect();
        let batch = data::images_to_input(items.iter().map(|item| &item.pixels), &Device::flex());
        images.extend(batch.clone().into_data().try_to_vec::<f32>().unwrap());
        logits.extend(
            network
                .network()
                .forward(batch)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
        );
    }
    let bytes = |values: &[f32]| {
        values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>()
    };
    std::fs::write(dir.path().join("images.f32"), bytes(&images)).unwrap();
    std::fs::write(dir.path().join("logits.f32"), bytes(&logits)).unwrap();
    let python = std::env::var("MNIST_BURN_PYTHON")
        .expect("MNIST_BURN_PYTHON names the Python that .ci/run sets up");
    let check = Command::new(python)
        .arg(root().join("scripts/check_onnx.py"))
        .args([
            &onnx,
            &dir.path().join("images.f32"),
            &dir.path().join("logits.f32"),
        ])
        .output()
        .unwrap();
    let report = text(&check.stdout);
    assert!(check.status.success(), "{report}{}", text(&check.stderr));
    assert!(
        report.contains("batch 1: 10000 images, 0 digits differ"),
        "{report}"
    );
    print!("{report}");
}
