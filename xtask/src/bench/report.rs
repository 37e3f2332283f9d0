//! `bench --out FILE`: the figures as one markdown file, headed by the command, the date and
//! the machine; with `--readme`, the README's summary table and transcript copied from it,
//! so the README can quote no figure that this file does not hold.

use std::path::Path;

/// The blocks the README shares with the report, each between `<!-- NAME -->` and
/// `<!-- /NAME -->`; the tidy test `the_readme_quotes_the_bench_report` holds them equal.
pub const SHARED_BLOCKS: [&str; 2] = ["summary", "transcript"];

/// `text` between the markers of block `name`, markers excluded; `None` if either is missing.
pub fn block<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let (open, close) = markers(name);
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&close)?;
    Some(&text[start..end])
}

/// `text` with block `name`'s content replaced by `content`.
pub fn replace_block(text: &str, name: &str, content: &str) -> anyhow::Result<String> {
    let Some(old) = block(text, name) else {
        anyhow::bail!("no `<!-- {name} -->` … `<!-- /{name} -->` block");
    };
    let start = old.as_ptr() as usize - text.as_ptr() as usize;
    Ok(format!(
        "{}{content}{}",
        &text[..start],
        &text[start + old.len()..]
    ))
}

fn markers(name: &str) -> (String, String) {
    (format!("<!-- {name} -->"), format!("<!-- /{name} -->"))
}

/// Wraps `content` in block `name`'s markers, each on a line of its own.
pub fn wrap(name: &str, content: &str) -> String {
    let (open, close) = markers(name);
    format!("{open}\n{}\n{close}", content.trim_end())
}

/// The whole report: a heading, where the figures come from, then each section.
pub fn document(command: &str, machine: &str, sections: &[String]) -> String {
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default();
    let mut text = format!(
        "# Measured figures\n\nWritten by `{command}` on {date}, on {machine}. Every speed and \
         accuracy figure in the README is copied from this file; run the command to measure \
         your own machine (compare figures of one run only: a machine's speed varies from day \
         to day).\n"
    );
    for section in sections {
        text.push('\n');
        text.push_str(section.trim_end());
        text.push('\n');
    }
    text
}

/// Copies the shared blocks of `report` into the README at `readme`.
pub fn update_readme(readme: &Path, report: &str) -> anyhow::Result<()> {
    let mut text = std::fs::read_to_string(readme)?;
    for name in SHARED_BLOCKS {
        let Some(content) = block(report, name) else {
            anyhow::bail!("the report has no {name} block");
        };
        text = replace_block(&text, name, content)?;
    }
    std::fs::write(readme, text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_found_and_replaced_between_their_markers() {
        let text = "a\n<!-- x -->\nold\n<!-- /x -->\nb\n";
        assert_eq!(block(text, "x"), Some("\nold\n"));
        assert_eq!(block(text, "y"), None);
        let replaced = replace_block(text, "x", "\nnew\n").unwrap();
        assert_eq!(replaced, "a\n<!-- x -->\nnew\n<!-- /x -->\nb\n");
        assert_eq!(wrap("x", "new\n"), "<!-- x -->\nnew\n<!-- /x -->");
        assert!(replace_block(text, "y", "").is_err());
    }
}
