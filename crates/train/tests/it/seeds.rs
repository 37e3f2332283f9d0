//! `--seeds`: one recipe trained once per seed into its own run, summarised over the seeds,
//! and resumed without retraining the seeds already finished.

use crate::{assert_refused, text, train_into};
use std::path::Path;

/// A recipe small enough to train twice in seconds, with a validation split.
const TINY: [&str; 8] = [
    "--set",
    "data.train_limit=1500",
    "--set",
    "data.test_limit=300",
    "--set",
    "data.validation_images=300",
    "--set",
    "training.epochs=1",
];

fn rows(csv: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| line.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn seeds_are_trained_summarised_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("seeds");
    let smoke = Path::new("configs/smoke.toml");
    let mut args = vec!["--seeds", "2"];
    args.extend(TINY);
    let output = train_into(smoke, &runs, &args);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains("over 2 seeds"), "{stdout}");
    assert!(stdout.contains("validation accuracy"), "{stdout}");

    // Each seed is a whole run trained with its own seed.
    for seed in [1, 2] {
        let run = runs.join(format!("seed-{seed}"));
        let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
        assert!(config.contains(&format!("seed = {seed}\n")), "{config}");
        assert!(run.join("model.bpk").is_file());
    }
    let models = |seed: u32| std::fs::read(runs.join(format!("seed-{seed}/model.bpk"))).unwrap();
    assert_ne!(models(1), models(2), "two seeds trained the same model");

    // seeds.csv has a row per seed, and seeds.json their mean.
    let table = rows(&runs.join("seeds.csv"));
    assert_eq!(
        table.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        ["1", "2"]
    );
    let accuracies: Vec<f64> = table.iter().map(|r| r[2].parse().unwrap()).collect();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("seeds.json")).unwrap()).unwrap();
    let mean = summary["test_accuracy"]["mean"].as_f64().unwrap();
    assert!(
        (mean - (accuracies[0] + accuracies[1]) / 2.0).abs() < 0.006,
        "{mean}"
    );
    assert!(summary["validation_accuracy"]["std"].as_f64().unwrap() >= 0.0);

    // Starting over needs --restart; a resumed run keeps its recipe.
    let output = train_into(smoke, &runs, &args);
    assert_refused(&output, &["earlier run", "--restart"]);
    let resume_changed = ["--seeds", "3", "--resume", "--set", "training.epochs=2"];
    assert_refused(
        &train_into(smoke, &runs, &resume_changed),
        &["keeps the recipe"],
    );

    // Resuming with one more seed trains only that one.
    let first = models(1);
    let output = train_into(smoke, &runs, &["--seeds", "3", "--resume"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        !stdout.contains("seed 1 (1 of 3)"),
        "seed 1 trained again: {stdout}"
    );
    assert!(stdout.contains("seed 3 (3 of 3)"), "{stdout}");
    assert_eq!(models(1), first);
    assert_eq!(rows(&runs.join("seeds.csv")).len(), 3);
    assert!(stdout.contains("over 3 seeds"), "{stdout}");
}
