//! Scoring a model on labelled MNIST images through the same path `infer` uses: the one
//! scoring of a test set, behind `eval`, training's final score and the tests.

use crate::classify::DigitClassifier;
use crate::outliers::VerdictShares;
use burn::data::dataset::Dataset;
use data::{MnistDataset, PIXELS};
use model::{ClassifyError, Verdict, VerdictRule};
use std::fmt;

/// Test-set figures of one model.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy, `-ln p(true digit)`.
    pub loss: f64,
    /// Percent.
    pub accuracy: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: [[u32; 10]; 10],
    /// Every image the model got wrong, in test-set order.
    pub misclassified: Vec<Misclassified>,
    /// `(true digit, predicted digit)` for every image, in test-set order.
    pub predictions: Vec<(u8, u8)>,
    /// The top probability for every image, in test-set order.
    pub confidences: Vec<f32>,
    /// The verdict for every image, in test-set order.
    pub verdicts: Vec<Verdict>,
    /// The rule the verdicts were given by.
    pub rule: VerdictRule,
    /// What the images were, as printed: `test` unless the caller says otherwise.
    pub scored_set: &'static str,
}

/// A test image and the wrong digit the model gave it.
#[derive(Clone, Debug, PartialEq)]
pub struct Misclassified {
    /// The image as the network saw it.
    pub pixels: [u8; PIXELS],
    /// Its label.
    pub truth: usize,
    /// What the network said.
    pub predicted: usize,
}

impl Evaluation {
    /// Classifies every item of `dataset` and tallies the results.
    pub fn run(
        classifier: &DigitClassifier,
        dataset: &MnistDataset,
    ) -> Result<Self, ClassifyError> {
        let items: Vec<_> = (0..Dataset::len(dataset))
            .filter_map(|i| dataset.item(i))
            .collect();
        let pixels: Vec<[u8; PIXELS]> = items.iter().map(|item| item.pixels).collect();
        let mut confusion = [[0u32; 10]; 10];
        let mut loss = 0.0;
        let mut misclassified = Vec::new();
        let mut predictions = Vec::with_capacity(items.len());
        let mut confidences = Vec::with_capacity(items.len());
        let mut verdicts = Vec::with_capacity(items.len());
        for (prediction, item) in classifier.classify(&pixels)?.iter().zip(&items) {
            confidences.push(prediction.confidence());
            verdicts.push(prediction.verdict);
            let truth = usize::from(item.label);
            predictions.push((item.label, prediction.digit.min(9) as u8));
            confusion[truth][prediction.digit.min(9)] += 1;
            if prediction.digit != truth {
                misclassified.push(Misclassified {
                    pixels: item.pixels,
                    truth,
                    predicted: prediction.digit,
                });
            }
            let p = f64::from(prediction.probabilities[truth]).max(1e-12);
            loss -= p.ln();
        }
        let n = items.len().max(1) as f64;
        let correct: u32 = (0..10).map(|d| confusion[d][d]).sum();
        Ok(Self {
            loss: loss / n,
            accuracy: 100.0 * f64::from(correct) / n,
            confusion,
            misclassified,
            predictions,
            confidences,
            verdicts,
            rule: classifier.rule(),
            scored_set: "test",
        })
    }

    /// The share of images given each verdict.
    pub fn verdict_shares(&self) -> VerdictShares {
        VerdictShares::of(&self.verdicts)
    }

    /// Percent right among the images called a digit: what a user who trusts only `digit`
    /// answers gets.
    pub fn accuracy_when_digit(&self) -> f64 {
        let called = self.verdicts.iter().filter(|&&v| v == Verdict::Digit);
        let right = self
            .verdicts
            .iter()
            .zip(&self.predictions)
            .filter(|(v, (truth, predicted))| **v == Verdict::Digit && truth == predicted)
            .count();
        percent(right as u32, called.count() as u32)
    }

    /// The top probability that `share` (from 0 to 1) of these images reach: the
    /// `verdict.digit_at_least` that keeps that share of them digits, for choosing one on
    /// validation images.
    pub fn threshold_keeping(&self, share: f64) -> Option<f32> {
        let mut sorted = self.confidences.clone();
        sorted.sort_by(f32::total_cmp);
        let dropped = ((1.0 - share.clamp(0.0, 1.0)) * sorted.len() as f64).floor() as usize;
        sorted
            .get(dropped.min(sorted.len().saturating_sub(1)))
            .copied()
    }

    /// Of the images predicted as `digit`, the share that are `digit` (percent).
    pub fn precision(&self, digit: usize) -> f64 {
        let predicted: u32 = (0..10).map(|t| self.confusion[t][digit]).sum();
        percent(self.confusion[digit][digit], predicted)
    }

    /// Of the images that are `digit`, the share predicted as `digit` (percent).
    pub fn recall(&self, digit: usize) -> f64 {
        let actual: u32 = self.confusion[digit].iter().sum();
        percent(self.confusion[digit][digit], actual)
    }
}

fn percent(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * f64::from(part) / f64::from(whole)
    }
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: u32 = self.confusion.iter().flatten().sum();
        writeln!(
            f,
            "{} accuracy {:.2}%  loss {:.4}  ({total} images)",
            self.scored_set, self.accuracy, self.loss
        )?;
        writeln!(
            f,
            "verdicts (a digit from a top probability of {}): {}; {:.2}% right when called a digit\n",
            self.rule.digit_at_least,
            self.verdict_shares(),
            self.accuracy_when_digit()
        )?;
        writeln!(f, "digit  precision  recall  images")?;
        for digit in 0..10 {
            writeln!(
                f,
                "{digit:>5}  {:>8.2}%  {:>5.2}%  {:>6}",
                self.precision(digit),
                self.recall(digit),
                self.confusion[digit].iter().sum::<u32>()
            )?;
        }
        writeln!(f, "\nconfusion (rows: true digit, columns: predicted)")?;
        write!(f, "     ")?;
        for digit in 0..10 {
            write!(f, "{digit:>6}")?;
        }
        for (truth, row) in self.confusion.iter().enumerate() {
            write!(f, "\n{truth:>5}")?;
            for count in row {
                write!(f, "{count:>6}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModelSource;
    use burn::prelude::Device;
    use data::Split;
    use std::path::Path;

    #[test]
    fn the_score_tallies_the_classifiers_own_predictions() {
        let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
        let test = MnistDataset::load(&mnist, Split::Test).unwrap().take(300);
        let classifier = DigitClassifier::load(&ModelSource::Shipped, Device::flex()).unwrap();
        let score = Evaluation::run(&classifier, &test).unwrap();

        let items: Vec<_> = (0..300).filter_map(|i| test.item(i)).collect();
        let pixels: Vec<_> = items.iter().map(|item| item.pixels).collect();
        let predictions = classifier.classify(&pixels).unwrap();
        let correct = predictions
            .iter()
            .zip(&items)
            .filter(|(p, item)| p.digit == usize::from(item.label))
            .count();
        let loss: f64 = predictions
            .iter()
            .zip(&items)
            .map(|(p, item)| -f64::from(p.probabilities[usize::from(item.label)]).ln())
            .sum::<f64>()
            / 300.0;

        assert_eq!(score.accuracy, 100.0 * correct as f64 / 300.0);
        assert!((score.loss - loss).abs() < 1e-9, "{} vs {loss}", score.loss);
        assert_eq!(score.confusion.iter().flatten().sum::<u32>(), 300);
        assert_eq!(score.misclassified.len(), 300 - correct);
        assert_eq!(score.predictions.len(), 300);
        assert!(score.accuracy > 97.0, "{}", score.accuracy);
        let digits = predictions
            .iter()
            .filter(|p| p.verdict == Verdict::Digit)
            .count();
        assert_eq!(score.verdict_shares().digit, digits as f64 / 300.0);
        let right_when_digit = predictions
            .iter()
            .zip(&items)
            .filter(|(p, item)| p.verdict == Verdict::Digit && p.digit == usize::from(item.label))
            .count();
        assert_eq!(
            score.accuracy_when_digit(),
            100.0 * right_when_digit as f64 / digits as f64
        );
        let lowest = score.confidences.iter().copied().fold(1.0, f32::min);
        assert_eq!(score.threshold_keeping(1.0), Some(lowest));
        let keeping_most = score.threshold_keeping(0.99).unwrap();
        let kept = score
            .confidences
            .iter()
            .filter(|&&c| c >= keeping_most)
            .count();
        assert!(kept >= 297, "{kept}");
    }
}
