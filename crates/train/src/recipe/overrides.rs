//! `--set KEY=VALUE`: one value at a time over a recipe, each checked like a file's.

use super::{ConfigError, RunConfig};

impl RunConfig {
    /// Applies `KEY=VALUE` settings (dotted keys, TOML values; bare words are strings) over
    /// this config, each checked like a file's value and named as `--set KEY=VALUE` in errors.
    pub fn with_overrides(self, overrides: &[String]) -> Result<Self, ConfigError> {
        let mut config = self;
        for setting in overrides {
            let origin = format!("--set {setting}");
            let fail = |key: &str, reason: String| ConfigError {
                origin: origin.clone(),
                key: key.to_string(),
                reason,
            };
            let Some((key, value)) = setting.split_once('=') else {
                return Err(fail("", "expected KEY=VALUE".into()));
            };
            if setting.contains(['\n', '\r']) {
                return Err(fail(
                    key.trim(),
                    "one value per --set: no line breaks".into(),
                ));
            }
            let key = key.trim();
            let value = toml_value(value.trim()).map_err(|reason| fail(key, reason))?;
            config = config.with_value(key, value, &origin)?;
        }
        Ok(config)
    }

    /// This config with `value` at the dotted `key`, checked as a whole; `origin` names the
    /// setting in errors. Which keys exist is the schema's own answer (serde's), so optional
    /// keys that a resolved config leaves out are found like the others.
    fn with_value(&self, key: &str, value: toml::Value, origin: &str) -> Result<Self, ConfigError> {
        let fail = |reason: String| ConfigError {
            origin: origin.to_string(),
            key: key.to_string(),
            reason,
        };
        let mut table = toml::Table::try_from(self).expect("a RunConfig always serialises");
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        let section = key.rsplit_once('.').map_or("", |(section, _)| section);
        let mut slot = &mut table;
        for part in parts {
            let sections = slot.iter().filter(|(_, v)| v.is_table()).map(|(k, _)| k);
            let hint = did_you_mean(part, sections, "");
            slot = match slot.get_mut(part) {
                Some(toml::Value::Table(inner)) => inner,
                _ => return Err(fail(format!("no such section{hint}"))),
            };
        }
        let mut names: Vec<String> = slot.keys().cloned().collect();
        let written = slot.contains_key(last);
        slot.insert(last.to_string(), value);
        match Self::parse(
            &toml::to_string(&table).expect("a table serialises"),
            origin,
        ) {
            Err(error) if !written && is_unknown_key(&error.reason) => {
                names.extend(expected_fields(&error.reason));
                let hint = did_you_mean(last, names.iter(), section);
                Err(fail(format!("unknown key{hint}")))
            }
            parsed => parsed,
        }
    }
}

/// A `--set` value as TOML reads it; a bare word is a string.
fn toml_value(raw: &str) -> Result<toml::Value, String> {
    let parsed = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    match parsed {
        Some(value) => Ok(value),
        // TOML refuses a float it cannot hold; Rust reads it as infinity.
        None if raw.parse::<f64>().is_ok_and(|v| v.is_infinite()) => {
            Err(format!("{raw} is too large a number"))
        }
        None => Ok(toml::Value::String(raw.to_string())),
    }
}

/// Whether a parse error is about a key the schema does not have: serde's words for a
/// section's fields, or the `[model]` section's strict reader's.
fn is_unknown_key(reason: &str) -> bool {
    reason.starts_with("unknown field `") || reason.starts_with("unknown key `")
}

/// The field names serde lists in an "unknown field `x`, expected one of `a`, `b`" message.
fn expected_fields(reason: &str) -> Vec<String> {
    let Some((_, expected)) = reason.split_once(", expected ") else {
        return Vec::new();
    };
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

/// `; did you mean `SECTION.NAME`?` for the candidate closest to a mistyped `word`, when one
/// is close enough to be a typo (a third of its letters at most).
fn did_you_mean<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a String>,
    section: &str,
) -> String {
    let dotted = |name: &str| match section {
        "" => name.to_string(),
        section => format!("{section}.{name}"),
    };
    candidates
        .map(|candidate| (strsim::damerau_levenshtein(word, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(1))
        .min()
        .map(|(_, candidate)| format!("; did you mean `{}`?", dotted(candidate)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_are_applied_and_checked() {
        let set = |s: &[&str]| {
            RunConfig::default()
                .with_overrides(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        let config = set(&[
            "optimizer.learning_rate=0.01",
            "training.epochs = 3",
            "data.train_limit=500",
        ])
        .unwrap();
        assert_eq!(config.optimizer.learning_rate, 0.01);
        assert_eq!(config.training.epochs, 3);
        assert_eq!(config.data.train_limit, Some(500));
        assert_eq!(config.data.dir, RunConfig::default().data.dir);

        let err = set(&["training.batch_size=0"]).unwrap_err();
        assert_eq!(err.origin, "--set training.batch_size=0");
        assert_eq!(err.key, "training.batch_size");
        let err = set(&["optimizer.lr=0.01"]).unwrap_err();
        assert_eq!(err.key, "optimizer.lr", "{err}");
        let err = set(&["optimiser.learning_rate=0.01"]).unwrap_err();
        assert!(err.reason.contains("no such section"), "{err}");
        let err = set(&["training.epochs=many"]).unwrap_err();
        assert_eq!(err.key, "training.epochs", "{err}");
        assert!(set(&["epochs"]).unwrap_err().reason.contains("KEY=VALUE"));
    }

    #[test]
    fn a_mistyped_override_gets_the_nearest_key() {
        let set = |s: &str| RunConfig::default().with_overrides(&[s.to_string()]);
        let reason = |s: &str| set(s).unwrap_err().reason;
        assert_eq!(
            reason("optimizer.learning_rat=0.01"),
            "unknown key; did you mean `optimizer.learning_rate`?"
        );
        assert_eq!(
            reason("optimiser.learning_rate=0.01"),
            "no such section; did you mean `optimizer`?"
        );
        assert_eq!(reason("sed=4"), "unknown key; did you mean `seed`?");
        // Keys a resolved config leaves out (optional ones) are known from the schema too.
        assert_eq!(
            reason("data.train_limt=500"),
            "unknown key; did you mean `data.train_limit`?"
        );
        assert_eq!(
            set("data.validation_images=100")
                .unwrap()
                .data
                .validation_images,
            Some(100)
        );
        assert_eq!(
            reason("model.conv1_channel=4"),
            "unknown key; did you mean `model.conv1_channels`?"
        );
        assert_eq!(reason("optimizer.zzz=1"), "unknown key");
        assert_eq!(
            reason("optimizer.learning_rate=1e309"),
            "1e309 is too large a number"
        );
        assert!(reason("optimizer.epsilon=1e-50").contains("smallest normal 32-bit float"));
        // A value that smuggles in more TOML is refused whole, not half-applied.
        let err = set("seed=5\n[optimizer]\nlearning_rate=5").unwrap_err();
        assert!(err.reason.contains("line breaks"), "{err}");
    }
}
