//! How a file's result is written: one JSON object per line for programs, or two lines of
//! text for people.

use crate::files::FileResult;
use model::{Prediction, Verdict};
use serde_json::json;

/// One image's answer in JSON (the schema lives with [`Prediction`], in `model`).
pub use model::PredictionJson;

/// [`PredictionJson`] as a JSON object, with its keys in order (more may be added to it).
pub fn prediction_value(prediction: &Prediction) -> serde_json::Value {
    serde_json::to_value(PredictionJson::from(prediction)).unwrap_or_default()
}

/// A file's name shown faithfully, in JSON and in text alike: UTF-8 as it is, but a
/// backslash doubled, a control character as `\n`, `\t`, `\r` or `\u{1b}`, and a byte that is
/// not UTF-8 as `\xNN`. No two names show the same, and no name can forge a line of output.
pub fn display_name(path: &std::path::Path) -> String {
    #[cfg(unix)]
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    #[cfg(not(unix))]
    let lossy = path.to_string_lossy();
    #[cfg(not(unix))]
    let bytes = lossy.as_bytes();
    let mut shown = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => shown.push_str("\\\\"),
                '\n' => shown.push_str("\\n"),
                '\t' => shown.push_str("\\t"),
                '\r' => shown.push_str("\\r"),
                c if c.is_control() => shown.push_str(&c.escape_unicode().to_string()),
                c => shown.push(c),
            }
        }
        for byte in chunk.invalid() {
            shown.push_str(&format!("\\x{byte:02x}"));
        }
    }
    shown
}

/// `{"file", "digit", "confidence", "probabilities"}`, or `{"file", "error"}`.
pub fn json_line(result: &FileResult) -> String {
    let file = display_name(&result.path);
    match &result.outcome {
        Ok(classified) => {
            let mut value = prediction_value(&classified.prediction);
            value["file"] = json!(file);
            value
        }
        Err(error) => json!({ "file": file, "error": error.to_string() }),
    }
    .to_string()
}

/// `FILE: DIGIT (CONFIDENCE%)` (or `FILE: 4 or 9? (48.0% / 44.0%)`, or `FILE: not a digit
/// (at most 3, 12.0%)`, by the verdict), then every class's probability, or with `top`
/// below the number of classes only the `top` most likely, as percentages.
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
    format!("{file}: {}\n  {}", headline(prediction), shown.join("  "))
}

/// What the verdict makes of the image, in words: `7 (90.0%)`, `4 or 9? (48.0% / 44.0%)`,
/// `not a digit (at most 3, 12.0%)`.
pub fn headline(prediction: &Prediction) -> String {
    let (digit, confidence) = (prediction.digit, 100.0 * prediction.confidence());
    match (prediction.verdict, prediction.runner_up()) {
        (Verdict::Unsure, Some((other, p))) => {
            format!("{digit} or {other}? ({confidence:.1}% / {:.1}%)", 100.0 * p)
        }
        (Verdict::NotADigit, _) => format!("not a digit (at most {digit}, {confidence:.1}%)"),
        _ => format!("{digit} ({confidence:.1}%)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{Classified, FileError};
    use std::path::PathBuf;

    fn prediction() -> Prediction {
        let mut probabilities = vec![0.0; 10];
        probabilities[7] = 0.9;
        probabilities[1] = 0.0999994;
        probabilities[2] = 6e-7;
        Prediction {
            digit: 7,
            probabilities,
            verdict: Verdict::Digit,
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
        assert_eq!(value["verdict"], "digit");
        assert_eq!(value["probabilities"][1], 0.099999);
        assert_eq!(value["probabilities"][2], 1e-6);
        let failed = FileResult {
            path: PathBuf::from("b.png"),
            outcome: Err(FileError::NoPrediction(PathBuf::from("b.png"))),
        };
        assert_eq!(
            json_line(&failed),
            r#"{"error":"b.png: no prediction","file":"b.png"}"#
        );
    }

    #[cfg(unix)]
    #[test]
    fn names_are_shown_faithfully_and_cannot_forge_a_line() {
        use std::os::unix::ffi::OsStrExt;
        let name =
            |bytes: &[u8]| display_name(std::path::Path::new(std::ffi::OsStr::from_bytes(bytes)));
        assert_eq!(name(b"data/seven.png"), "data/seven.png");
        assert_eq!(name("é.png".as_bytes()), "é.png");
        assert_eq!(name(b"a\nb.png: 7 (100.0%)"), "a\\nb.png: 7 (100.0%)");
        assert_eq!(name(b"\x1b[31m.png"), "\\u{1b}[31m.png");
        // Two names that a lossy conversion would both show as `?.png` stay apart.
        assert_eq!(name(b"\xff.png"), "\\xff.png");
        assert_eq!(name(b"\xfe.png"), "\\xfe.png");
        assert_eq!(name(b"\\xff.png"), "\\\\xff.png");
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
        let unsure = Prediction {
            verdict: Verdict::Unsure,
            ..prediction()
        };
        assert_eq!(headline(&unsure), "7 or 1? (90.0% / 10.0%)");
        let none = Prediction {
            verdict: Verdict::NotADigit,
            ..prediction()
        };
        assert_eq!(headline(&none), "not a digit (at most 7, 90.0%)");
    }
}
