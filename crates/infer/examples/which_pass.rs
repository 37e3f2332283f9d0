//! Which typed characters pass as digits, per font, for the runs in a folder.
use burn::prelude::*;
use infer::outliers::{TYPED_NON_DIGITS, typed_images};
use infer::{DigitClassifier, ModelSource, seed_runs_in};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs = seed_runs_in(Path::new(&args[0]));
    let threshold: f32 = args[1].parse().unwrap();
    let chars: Vec<char> = TYPED_NON_DIGITS.chars().collect();
    for font in &args[2..] {
        let images = typed_images(Path::new(font), TYPED_NON_DIGITS).unwrap();
        assert_eq!(images.len(), chars.len());
        let mut passes: BTreeMap<char, (usize, Vec<usize>)> = BTreeMap::new();
        for (_, run) in &runs {
            let c = DigitClassifier::load(&ModelSource::RunDir(PathBuf::from(run)), Device::flex())
                .unwrap();
            for (p, ch) in c.classify(&images).unwrap().iter().zip(&chars) {
                if p.confidence() >= threshold {
                    let e = passes.entry(*ch).or_default();
                    e.0 += 1;
                    e.1.push(p.digit);
                }
            }
        }
        let always: Vec<String> = passes
            .iter()
            .map(|(c, (n, d))| {
                format!(
                    "{c}{n}→{}",
                    d.iter().map(|x| x.to_string()).collect::<String>()
                )
            })
            .collect();
        println!("{font}: {}", always.join(" "));
    }
}
