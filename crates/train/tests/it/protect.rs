//! A run directory holds one run: commands that would mix another run into a finished
//! one are refused before anything is written, and two trainings never write one directory
//! at once.

use crate::{assert_refused, text, train, train_command, train_into};
use std::path::Path;
use std::time::{Duration, Instant};

/// The bytes of every file a run wrote, by name.
fn snapshot(run: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for name in [
        "config.toml",
        "model.bpk",
        "model.bpk.sha256",
        "metrics.csv",
        "summary.json",
    ] {
        files.push((name.to_string(), std::fs::read(run.join(name)).unwrap()));
    }
    let mut checkpoints: Vec<_> = std::fs::read_dir(run.join("checkpoint"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    checkpoints.sort();
    for path in checkpoints {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        files.push((name, std::fs::read(path).unwrap()));
    }
    files
}

#[test]
fn a_finished_run_is_left_alone_unless_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let smoke = Path::new("configs/smoke.toml");
    let output = train_into(smoke, &run, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let before = snapshot(&run);

    // A new run into it, and a resumed one that would change its network: both refused.
    let output = train_into(smoke, &run, &[]);
    assert_refused(
        &output,
        &[run.to_str().unwrap(), "earlier run", "--restart"],
    );
    let run_dir = run.to_str().unwrap();
    let output = train(&[
        "--resume",
        "--model",
        run_dir,
        "--set",
        "model.conv1_channels=12",
    ]);
    assert_refused(&output, &["model", "keeps the network"]);
    assert!(
        snapshot(&run) == before,
        "a refused command changed the run"
    );

    // --restart replaces the run, once the new recipe has been checked.
    let output = train_into(
        smoke,
        &run,
        &["--restart", "--set", "optimizer.learning_rate=-1"],
    );
    assert_refused(&output, &["optimizer.learning_rate"]);
    assert!(
        snapshot(&run) == before,
        "a refused restart changed the run"
    );
    let output = train_into(
        smoke,
        &run,
        &["--restart", "--set", "data.train_limit=2000"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("train_limit = 2000"), "{config}");
}

/// `--restart` removes only what a run wrote, and a single run never goes into a
/// multi-seed run's folder, not even with `--restart`.
#[test]
fn a_restart_removes_only_the_runs_own_files_and_never_a_seeds_folder() {
    let dir = tempfile::tempdir().unwrap();
    let smoke = Path::new("configs/smoke.toml");
    let run = dir.path().join("run");
    let output = train_into(smoke, &run, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    std::fs::write(run.join("checkpoint/notes.txt"), b"mine").unwrap();
    let output = train_into(smoke, &run, &["--restart"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        std::fs::read(run.join("checkpoint/notes.txt")).unwrap(),
        b"mine"
    );

    let seeds = dir.path().join("seeds");
    let seeds_dir = seeds.to_str().unwrap();
    let output = train(&[
        "--config",
        "configs/smoke.toml",
        "--seeds",
        "1",
        "--model",
        seeds_dir,
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let files = ["config.toml", "seeds.csv", "seeds.json", "seed-1/model.bpk"];
    let read_all = || files.map(|name| std::fs::read(seeds.join(name)).unwrap());
    let before = read_all();
    for extra in [&[][..], &["--restart"][..], &["--resume"][..]] {
        let output = train_into(smoke, &seeds, extra);
        assert_refused(&output, &[seeds_dir, "multi-seed run", "seed-1"]);
    }
    assert!(
        read_all() == before,
        "a refused run changed the seeds' folder"
    );
    assert!(!seeds.join("model.bpk").exists());
}

#[test]
fn two_trainings_never_write_one_directory_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("three.toml");
    std::fs::write(
        &config,
        "[training]\nepochs = 3\n[data]\ntrain_limit = 30000\ntest_limit = 1000\n",
    )
    .unwrap();
    let run = dir.path().join("run");
    let (config, run_dir) = (config.to_str().unwrap(), run.to_str().unwrap());
    let mut first = train_command(&["--config", config, "--model", run_dir])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Once its recipe is saved, the first run holds the directory and is training.
    let started = Instant::now();
    while !run.join("config.toml").exists() {
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended early"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no recipe appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let holder = format!("process {}", first.id());
    let output = train(&["--config", config, "--model", run_dir, "--restart"]);
    assert_refused(&output, &[run_dir, "another training", &holder]);
    let output = train(&["--resume", "--model", run_dir]);
    assert_refused(&output, &["another training", &holder]);
    first.kill().unwrap();
    first.wait().unwrap();
}

/// A checkpoint cut short (a full disk, a copy interrupted) is named on `--resume`, with the
/// way out, instead of a panic inside Burn.
#[test]
fn a_truncated_checkpoint_is_refused_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = train_into(Path::new("configs/smoke.toml"), &run, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    for part in ["model", "optim", "scheduler"] {
        let path = run.join(format!("checkpoint/{part}-1.bpk"));
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
        let output = train(&[
            "--resume",
            "--epochs",
            "2",
            "--model",
            run.to_str().unwrap(),
        ]);
        assert_refused(&output, &[&format!("{part}-1.bpk"), "damaged"]);
        std::fs::write(&path, whole).unwrap();
    }
}

/// A checkpoint whose bytes changed but still parse (one weight flipped on disk) is refused by
/// its checksum on `--resume`: training on would blame the recipe for the damage.
#[test]
fn a_damaged_but_readable_checkpoint_is_refused_by_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = train_into(Path::new("configs/smoke.toml"), &run, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let path = run.join("checkpoint/model-1.bpk");
    assert!(run.join("checkpoint/model-1.bpk.sha256").is_file());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let resume = [
        "--resume",
        "--epochs",
        "2",
        "--model",
        run.to_str().unwrap(),
    ];
    let output = train(&resume);
    assert_refused(&output, &["model-1.bpk", "does not match its checksum"]);
    assert!(!run.join("checkpoint/model-2.bpk").exists());
}
