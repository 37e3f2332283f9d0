//! How a file's result is written: one JSON object per line for programs, or two lines of
//! text for people.

use crate::classify::Prediction;
use crate::files::FileResult;
use serde_json::json;

/// Six decimals are plenty for a probability and keep JSON lines readable.
fn rounded(p: f32) -> f64 {
    (f64::from(p) * 1e6).round() / 1e6
}

/// `{"file", "digit", "confidence", "probabilities"}`, or `{"file", "error"}`.
pub fn json_line(result: &FileResult) -> String {
    let file = result.path.display().to_string();
    match &result.outcome {
        Ok(classified) => {
            let prediction = &classified.prediction;
            json!({
                "file": file,
                "digit": prediction.digit,
                "confidence": rounded(prediction.confidence()),
                "probabilities": prediction.probabilities.iter().copied().map(rounded).collect::<Vec<_>>(),
            })
        }
        Err(error) => json!({ "file": file, "error": error }),
    }
    .to_string()
}

/// `FILE: DIGIT (CONFIDENCE%)`, then every class's probability, or with `top` below the
/// number of classes only the `top` most likely, as percentages.
pub fn human_text(file: &str, prediction: &Prediction, top: usize) -> String {
    let shown: Vec<String> = if top < prediction.probabilities.len() {
        prediction
            .ranked()
            .into_iter()
            .take(top)
            .map(|(digit, p)| format!("{digit}: {:.1}%", 100.0 * p))
            .collect()
    } else {
        prediction
            .probabilities
            .iter()
            .enumerate()
            .map(|(digit, p)| format!("{digit}: {p:.4}"))
            .collect()
    };
    format!(
        "{file}: {} ({:.1}%)\n  {}",
        prediction.digit,
        100.0 * prediction.confidence(),
        shown.join("  ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::Classified;
    use std::path::PathBuf;

    fn prediction() -> Prediction {
        let mut probabilities = vec![0.0; 10];
        probabilities[7] = 0.9;
        probabilities[1] = 0.0999994;
        probabilities[2] = 6e-7;
        Prediction {
            digit: 7,
            probabilities,
        }
    }

    #[test]
    fn json_lines_carry_the_digit_and_rounded_probabilities() {
        let result = FileResult {
            path: PathBuf::from("a.png"),
            outcome: Ok(Classified {
                pixels: [0; data::PIXELS],
                prediction: prediction(),
            }),
        };
        let value: serde_json::Value = serde_json::from_str(&json_line(&result)).unwrap();
        assert_eq!(value["file"], "a.png");
        assert_eq!(value["digit"], 7);
        assert_eq!(value["confidence"], 0.9);
        assert_eq!(value["probabilities"][1], 0.099999);
        assert_eq!(value["probabilities"][2], 1e-6);
        let failed = FileResult {
            path: PathBuf::from("b.png"),
            outcome: Err("b.png: not an image".into()),
        };
        assert_eq!(
            json_line(&failed),
            r#"{"error":"b.png: not an image","file":"b.png"}"#
        );
    }

    #[test]
    fn the_human_format_shows_all_classes_or_the_top_ones() {
        let all = human_text("a.png", &prediction(), 10);
        assert!(
            all.starts_with("a.png: 7 (90.0%)\n  0: 0.0000  1: 0.1000"),
            "{all}"
        );
        let top = human_text("a.png", &prediction(), 2);
        assert_eq!(top, "a.png: 7 (90.0%)\n  7: 90.0%  1: 10.0%");
    }
}
