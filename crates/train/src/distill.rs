//! Knowledge distillation: a finished run's network (the teacher) scores each training batch,
//! and its softened predictions become extra targets for the network being trained.
//!
//! The teacher only shapes the loss. The trained network keeps its architecture, its
//! parameters and its single forward pass, so everything downstream (inference, export, the
//! PyTorch round trip) is unchanged.

use crate::config::{ConfigError, DistillationSection, RunConfig};
use crate::error::TrainError;
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use infer::{DigitClassifier, ModelSource};
use model::Cnn;
use std::path::{Path, PathBuf};

/// A trained network whose predictions a run learns from, and how much.
#[derive(Clone, Debug)]
pub struct Teacher {
    /// On the run's device without autodiff: it is never trained.
    cnn: Cnn,
    temperature: f32,
    weight: f32,
}

/// The teacher a recipe names, checked but not loaded yet.
#[derive(Clone, Debug)]
pub struct TeacherRun {
    /// The run directory its weights are in.
    dir: PathBuf,
    /// The recipe's key, named in errors.
    config_path: PathBuf,
}

impl TeacherRun {
    /// The teacher `config` names, or `None` without one; reads only its recipe, so a wrong
    /// teacher is refused before the run writes anything.
    ///
    /// Refused when the teacher was trained on images this run holds out for validation:
    /// its predictions on them would leak their labels into the student. A teacher folder of
    /// `seed-K/` runs gives each seed its own teacher, so every seed's split stays unseen.
    pub fn find(config: &RunConfig, config_path: &Path) -> Result<Option<Self>, TrainError> {
        let Some(dir) = &config.distillation.teacher else {
            return Ok(None);
        };
        let run = Self {
            dir: teacher_dir(dir, config.seed),
            config_path: config_path.to_path_buf(),
        };
        let teacher_config = RunConfig::load(&run.dir.join("config.toml"))
            .map_err(|e| run.refuse(format!("{} is not a finished run: {e}", run.dir.display())))?;
        if let Some(reason) = leaks_validation(config, &teacher_config) {
            return Err(run.refuse(format!("{}: {reason}", run.dir.display())));
        }
        Ok(Some(run))
    }

    /// The teacher's network on `device`, to teach with `section`'s temperature and weight.
    pub fn load(
        &self,
        section: &DistillationSection,
        device: &Device,
    ) -> Result<Teacher, TrainError> {
        let classifier =
            DigitClassifier::load(&ModelSource::RunDir(self.dir.clone()), device.clone())
                .map_err(|e| self.refuse(e.to_string()))?;
        Ok(Teacher::new(classifier.network().clone(), section))
    }

    fn refuse(&self, reason: String) -> TrainError {
        TrainError::Config(ConfigError {
            origin: self.config_path.display().to_string(),
            key: "distillation.teacher".into(),
            reason,
        })
    }
}

impl Teacher {
    /// `cnn` as a teacher with `section`'s temperature and weight.
    pub fn new(cnn: Cnn, section: &DistillationSection) -> Self {
        Self {
            cnn,
            temperature: section.temperature,
            weight: section.weight,
        }
    }

    /// `(1 − weight) × hard + weight × T² × soft`, where `soft` is the cross-entropy from the
    /// teacher's predictions on `images` to the student's `logits`, both at temperature T.
    /// The T² keeps the soft gradients (which shrink as 1/T²) on the scale of the hard ones.
    ///
    /// # Shapes
    /// - `images`: `[batch, 1, 28, 28]`; `logits`: `[batch, classes]`; `hard`: `[1]`.
    pub fn blended_loss(&self, images: Tensor<4>, logits: Tensor<2>, hard: Tensor<1>) -> Tensor<1> {
        let temperature = self.temperature as f64;
        // Computed off the autodiff graph: a constant for the student's gradients.
        let taught = softmax(self.cnn.forward(images.inner()).div_scalar(temperature), 1);
        let learned = log_softmax(logits.div_scalar(temperature), 1);
        let soft = learned.mul(taught).sum_dim(1).mean().neg();
        let weight = self.weight as f64;
        hard.mul_scalar(1.0 - weight)
            .add(soft.mul_scalar(weight * temperature * temperature))
    }
}

/// `dir/seed-K` when `dir` holds such a run (a multi-seed teacher), else `dir`.
fn teacher_dir(dir: &Path, seed: u64) -> PathBuf {
    let per_seed = dir.join(format!("seed-{seed}"));
    match per_seed.join("model.bpk").is_file() {
        true => per_seed,
        false => dir.to_path_buf(),
    }
}

/// Why a teacher trained with `teacher`'s recipe has seen the student's validation images,
/// if it has. The split is drawn by seed from the first `train_limit` images, so the same
/// seed, split size and limit give the same split; without a split the student only scores
/// the test set, which no training run sees.
fn leaks_validation(student: &RunConfig, teacher: &RunConfig) -> Option<String> {
    let held = student.data.validation_images?;
    let same_split = teacher.seed == student.seed
        && teacher.data.validation_images == Some(held)
        && teacher.data.train_limit == student.data.train_limit;
    (!same_split).then(|| {
        format!(
            "it was trained on images this run validates on; train the teacher with seed = {} \
             and data.validation_images = {held} (or as many seeds, with --seeds)",
            student.seed
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::loss::CrossEntropyLossConfig;
    use model::CnnConfig;

    #[test]
    fn the_blended_loss_is_the_hinton_formula() {
        let device = Device::flex();
        let teacher_cnn = CnnConfig::new().with_conv1_channels(16).init(&device);
        let section = DistillationSection {
            teacher: None,
            temperature: 3.0,
            weight: 0.25,
        };
        let teacher = Teacher::new(teacher_cnn.clone(), &section);
        let images = Tensor::<4>::random(
            [4, 1, 28, 28],
            burn::tensor::Distribution::Uniform(0.0, 1.0),
            &device,
        );
        let logits = CnnConfig::new().init(&device).forward(images.clone());
        let targets = Tensor::<1, Int>::from_ints([1, 2, 3, 4], &device);
        let hard = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(logits.clone(), targets);
        let blended = teacher.blended_loss(images.clone(), logits.clone(), hard.clone());

        // By hand, row by row.
        let rows = |t: Tensor<2>| -> Vec<Vec<f32>> {
            let data = t.into_data().try_to_vec::<f32>().unwrap();
            data.chunks(10).map(<[f32]>::to_vec).collect()
        };
        let (taught, learned) = (rows(teacher_cnn.forward(images)), rows(logits));
        let soften = |row: &[f32]| -> Vec<f32> {
            let max = row.iter().fold(f32::MIN, |m, &x| m.max(x / 3.0));
            let exps: Vec<f32> = row.iter().map(|&x| (x / 3.0 - max).exp()).collect();
            let sum: f32 = exps.iter().sum();
            exps.iter().map(|e| e / sum).collect()
        };
        let soft: f32 = taught
            .iter()
            .zip(&learned)
            .map(|(t, s)| {
                let (p, q) = (soften(t), soften(s));
                -p.iter().zip(&q).map(|(p, q)| p * q.ln()).sum::<f32>()
            })
            .sum::<f32>()
            / 4.0;
        let hard = hard.into_scalar::<f32>();
        let expected = 0.75 * hard + 0.25 * 9.0 * soft;
        let got = blended.into_scalar::<f32>();
        assert!((got - expected).abs() < 1e-4, "{got} vs {expected}");
    }

    #[test]
    fn a_teacher_that_saw_the_validation_split_is_refused() {
        let mut student = RunConfig::default();
        let teacher = student.clone();
        assert_eq!(leaks_validation(&student, &teacher), None);
        student.data.validation_images = Some(10_000);
        let reason = leaks_validation(&student, &teacher).unwrap();
        assert!(reason.contains("validation_images = 10000"), "{reason}");
        let mut same_split = teacher.clone();
        same_split.data.validation_images = Some(10_000);
        assert_eq!(leaks_validation(&student, &same_split), None);
        same_split.seed += 1;
        assert!(leaks_validation(&student, &same_split).is_some());
    }

    #[test]
    fn a_multi_seed_teacher_gives_each_seed_its_own() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("seed-2")).unwrap();
        std::fs::write(dir.path().join("seed-2/model.bpk"), b"").unwrap();
        assert_eq!(teacher_dir(dir.path(), 2), dir.path().join("seed-2"));
        assert_eq!(teacher_dir(dir.path(), 3), dir.path());
    }
}
