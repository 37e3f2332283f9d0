//! Reading a recipe: TOML text to a checked [`RunConfig`], and files that `extends` others.

use super::{ConfigError, RunConfig};
use model::one_line;
use std::path::Path;

impl RunConfig {
    /// Reads, parses and validates a config file. A file may start from another with
    /// `extends = "other.toml"` (relative to its own folder): the other file's values, with
    /// this file's written over them, key by key.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let table = read_table(path, 0)?;
        let text = toml::to_string(&table).expect("a TOML table serialises");
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Self, ConfigError> {
        let deserializer = toml::Deserializer::parse(text).map_err(|e| ConfigError {
            origin: source.to_string(),
            key: String::new(),
            reason: syntax_error(text, &e),
        })?;
        let config: RunConfig =
            serde_path_to_error::deserialize(deserializer).map_err(|e| ConfigError {
                origin: source.to_string(),
                key: key_of(e.path()),
                reason: one_line(e.inner().message()),
            })?;
        config.validate(source)?;
        Ok(config)
    }
}

/// How many files one `extends` chain may hold: enough for any real layering, and a cycle
/// ends here instead of looping.
const MAX_EXTENDS: usize = 4;

/// `path`'s TOML table with what it `extends` resolved: the base's keys, this file's over
/// them. Syntax errors are reported here, with the file and line they are on.
fn read_table(path: &Path, depth: usize) -> Result<toml::Table, ConfigError> {
    let origin = path.display().to_string();
    let fail = |key: &str, reason: String| ConfigError {
        origin: origin.clone(),
        key: key.into(),
        reason,
    };
    let text = data::read_text_bounded(path, data::MAX_TEXT_FILE_BYTES)
        .map_err(|e| fail("", format!("cannot read: {e}")))?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| fail("", syntax_error(&text, &e)))?;
    let Some(base) = table.remove("extends") else {
        return Ok(table);
    };
    let Some(base) = base.as_str() else {
        return Err(fail("extends", "must be a file name in quotes".into()));
    };
    if depth + 1 >= MAX_EXTENDS {
        return Err(fail(
            "extends",
            format!("more than {MAX_EXTENDS} files extend each other (a cycle?)"),
        ));
    }
    let base_path = path.parent().unwrap_or(Path::new(".")).join(base);
    let mut merged = read_table(&base_path, depth + 1)?;
    merge(&mut merged, table);
    Ok(merged)
}

/// Writes `over`'s keys into `base`, descending into tables present in both.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(value)) => merge(inner, value),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn key_of(path: &serde_path_to_error::Path) -> String {
    path.to_string()
        .trim_start_matches('.')
        .trim_end_matches('?')
        .to_string()
}

/// A TOML syntax error in `text` as `line N: what`, on one line.
fn syntax_error(text: &str, error: &toml::de::Error) -> String {
    let offset = error.span().map_or(0, |span| span.start.min(text.len()));
    let line = 1 + text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    format!("line {line}: {}", one_line(error.message()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::CnnConfig;

    fn parse_err(text: &str) -> ConfigError {
        RunConfig::parse(text, "test.toml").unwrap_err()
    }

    #[test]
    fn unknown_keys_are_refused_with_their_path() {
        let err = parse_err("[training]\nepoch = 2\n");
        assert_eq!(err.origin, "test.toml");
        assert!(err.key.contains("training"), "{err}");
        assert!(err.reason.contains("epoch"), "{err}");
        let err = parse_err("colour = 'red'\n");
        assert!(err.reason.contains("colour"), "{err}");
    }

    #[test]
    fn the_model_section_is_read_strictly_with_the_models_schema() {
        let err = parse_err("[model]\nconv1_channel = 12\n");
        assert_eq!(err.key, "model", "{err}");
        assert!(err.reason.contains("unknown key `conv1_channel`"), "{err}");
        let config = RunConfig::parse("[model]\nconv1_channels = 12\n", "t.toml").unwrap();
        assert_eq!(config.model, CnnConfig::new().with_conv1_channels(12));
    }

    #[test]
    fn wrong_types_are_refused_with_their_key() {
        let err = parse_err("[optimizer]\nlearning_rate = 'fast'\n");
        assert_eq!(err.key, "optimizer.learning_rate", "{err}");
        let err = parse_err("[training]\nbatch_size = -4\n");
        assert_eq!(err.key, "training.batch_size", "{err}");
    }

    #[test]
    fn broken_toml_is_one_line_naming_the_file() {
        let err = parse_err("seed = 1\n[training\nepochs = 2");
        let line = err.to_string();
        assert!(line.starts_with("test.toml: line 2: "), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }

    #[test]
    fn a_config_extends_another_key_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "base.toml",
            "seed = 7\n[optimizer]\nlearning_rate = 0.01\nbeta2 = 0.99\n",
        );
        write(
            "child.toml",
            "extends = \"base.toml\"\n[optimizer]\nlearning_rate = 0.02\n",
        );
        let child = RunConfig::load(&dir.path().join("child.toml")).unwrap();
        assert_eq!(child.seed, 7);
        assert_eq!(child.optimizer.learning_rate, 0.02);
        assert_eq!(child.optimizer.beta2, 0.99);

        write("loop.toml", "extends = \"loop.toml\"\n");
        let err = RunConfig::load(&dir.path().join("loop.toml")).unwrap_err();
        assert_eq!(err.key, "extends", "{err}");
        write("broken.toml", "extends = \"missing.toml\"\n");
        let err = RunConfig::load(&dir.path().join("broken.toml")).unwrap_err();
        assert!(err.origin.ends_with("missing.toml"), "{err}");
        write(
            "bad.toml",
            "extends = \"base.toml\"\n[optimizer]\nlearning_rate = -1\n",
        );
        let err = RunConfig::load(&dir.path().join("bad.toml")).unwrap_err();
        assert!(err.origin.ends_with("bad.toml"), "{err}");
        assert_eq!(err.key, "optimizer.learning_rate", "{err}");
    }
}
