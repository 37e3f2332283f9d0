//! Distillation end to end: a small teacher, a student that learns from it, and the teachers
//! a run refuses.

use crate::{assert_refused, text, train_into};
use burn::module::Module;
use std::path::Path;

/// A quick run of `configs/smoke.toml` into `dir` with `extra` settings, which must succeed.
fn smoke_into(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let output = train_into(Path::new("configs/smoke.toml"), dir, extra);
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn a_student_learns_from_a_wider_teacher_and_keeps_its_own_network() {
    let dir = tempfile::tempdir().unwrap();
    let teacher = dir.path().join("teacher");
    smoke_into(
        &teacher,
        &[
            "--set",
            "model.conv1_channels=16",
            "--set",
            "model.conv2_channels=32",
        ],
    );
    let student = dir.path().join("student");
    let teacher_setting = format!("distillation.teacher={}", teacher.display());
    let summary = smoke_into(&student, &["--set", &teacher_setting]);
    let accuracy = summary["test_accuracy"].as_f64().unwrap();
    assert!(accuracy > 80.0, "test accuracy {accuracy}%");

    // The student is the tutorial's network: inference loads it as one.
    let saved = train::RunConfig::load(&student.join("config.toml")).unwrap();
    assert_eq!(saved.model, model::CnnConfig::new());
    assert_eq!(
        saved.distillation.teacher.as_deref(),
        Some(teacher.as_path())
    );
    let classifier = infer::DigitClassifier::load(
        &infer::ModelSource::RunDir(student.clone()),
        burn::tensor::Device::flex(),
    )
    .unwrap();
    assert_eq!(classifier.network().num_params(), 7_090);
}

#[test]
fn a_teacher_that_is_missing_or_saw_the_validation_images_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-teacher");
    let setting = format!("distillation.teacher={}", missing.display());
    let output = train_into(
        Path::new("configs/smoke.toml"),
        &dir.path().join("a"),
        &["--set", &setting],
    );
    assert_refused(
        &output,
        &["distillation.teacher", "no-teacher", "not a finished run"],
    );

    let teacher = dir.path().join("teacher");
    smoke_into(&teacher, &[]);
    let setting = format!("distillation.teacher={}", teacher.display());
    let output = train_into(
        Path::new("configs/smoke.toml"),
        &dir.path().join("b"),
        &["--set", &setting, "--set", "data.validation_images=2000"],
    );
    assert_refused(
        &output,
        &[
            "distillation.teacher",
            "validates on",
            "validation_images = 2000",
        ],
    );
    assert!(!dir.path().join("b").exists(), "nothing is written");
}
