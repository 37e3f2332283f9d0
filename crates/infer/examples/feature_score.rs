//! Experiment: does a score on the network's features (Mahalanobis distance to the nearest
//! class, Lee et al. 2018) tell non-digits from digits better than the top probability?
//!
//! `cargo run --release -p infer --example feature_score -- RUNS_DIR...` where each RUNS_DIR
//! holds `seed-K/` runs trained with a validation split of 5,000.

use burn::prelude::*;
use data::{MnistDataset, PIXELS, Split};
use infer::outliers::{
    Separation, TYPED_NON_DIGITS, dataset_images, drawn_non_digits, typed_images,
};
use infer::{DigitClassifier, ModelSource, seed_runs_in};
use std::path::{Path, PathBuf};

const FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
];

fn main() {
    let device = Device::flex();
    let data_dir = Path::new("data/mnist");
    let train_all = MnistDataset::load(data_dir, Split::Train).unwrap();
    let test = MnistDataset::load(data_dir, Split::Test).unwrap();
    let fashion = MnistDataset::load_collection(
        Path::new("/usr/share/datasets/fashion-mnist"),
        data::Collection::FashionMnist,
        Split::Test,
    )
    .unwrap();
    let mut kinds: Vec<(String, Vec<[u8; PIXELS]>)> = vec![
        ("fashion".into(), dataset_images(&fashion)),
        ("drawn".into(), drawn_non_digits()),
    ];
    for font in FONTS {
        let name = Path::new(font)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        kinds.push((
            name,
            typed_images(Path::new(font), TYPED_NON_DIGITS).unwrap(),
        ));
    }
    let real: Vec<[u8; PIXELS]> = std::fs::read_dir("data/digits")
        .unwrap()
        .map(|e| data::preprocess_image(&e.unwrap().path()).unwrap())
        .collect();
    let test_images = dataset_images(&test);
    let test_labels = test.labels();
    let variants: Vec<String> = std::env::var("VARIANTS")
        .unwrap_or("msp,rmaha,head,msp+head".into())
        .split(',')
        .map(String::from)
        .collect();
    for dir in std::env::args().skip(1) {
        println!("== {dir}");
        let mut table: Vec<(String, Vec<f64>)> = Vec::new();
        for (seed, run) in seed_runs_in(Path::new(&dir)) {
            let (train, validation) = train_all.clone().split_off_validation(5000, seed);
            let classifier =
                DigitClassifier::load(&ModelSource::RunDir(PathBuf::from(&run)), device.clone())
                    .unwrap();
            let cnn = classifier.network();
            let msp = |images: &[[u8; PIXELS]]| -> Vec<f32> {
                classifier
                    .classify(images)
                    .unwrap()
                    .iter()
                    .map(|p| p.confidence())
                    .collect()
            };
            let train_features = features(cnn, &dataset_images(&train), &device);
            let gauss = Gaussians::fit(&train_features, &train.labels(), &device);
            let mut outliers = infer::outliers::typed_images_in_weights(
                Path::new("assets/fonts/DejaVuSans.ttf"),
                TYPED_NON_DIGITS,
            )
            .unwrap();
            // Letters are few: repeat them, shifted, to weigh as much as the scribbles.
            let letters = outliers.clone();
            for _ in 0..20 {
                outliers.extend(letters.iter().cloned());
            }
            outliers.extend(infer::outliers::scribbles(20000, seed));
            let outlier_features = features(cnn, &outliers, &device);
            let head = Head::fit(&train_features, &outlier_features, &device);
            let score = |images: &[[u8; PIXELS]]| -> Scores {
                let f = features(cnn, images, &device);
                let (maha, rmaha) = gauss.distances(&f, &device);
                Scores {
                    msp: msp(images),
                    maha,
                    rmaha,
                    head: head.score(&f),
                }
            };
            let val = score(&dataset_images(&validation));
            let tst = score(&test_images);
            let rl = score(&real);
            let others: Vec<Scores> = kinds.iter().map(|(_, images)| score(images)).collect();
            let test_right: Vec<bool> = classifier
                .classify(&test_images)
                .unwrap()
                .iter()
                .zip(&test_labels)
                .map(|(p, &l)| p.digit == l as usize)
                .collect();
            for variant in &variants {
                let rule = Rule::choose(variant, &val, 0.995);
                let kept = |s: &Scores| -> Vec<bool> {
                    (0..s.msp.len()).map(|i| rule.keeps(s, i)).collect()
                };
                let tk = kept(&tst);
                let share = |v: &[bool]| v.iter().filter(|&&k| k).count() as f64 / v.len() as f64;
                let mut row = vec![100.0 * share(&tk), 100.0 * share(&kept(&rl))];
                // accuracy among kept
                let right_kept = tk
                    .iter()
                    .zip(&test_right)
                    .filter(|(k, r)| **k && **r)
                    .count();
                row.push(100.0 * right_kept as f64 / tk.iter().filter(|&&k| k).count() as f64);
                for o in &others {
                    row.push(100.0 * (1.0 - share(&kept(o))));
                }
                for o in &others {
                    let d = rule.single_score(&tst);
                    let s = rule.single_score(o);
                    row.push(Separation::of(&d, &s).map_or(f64::NAN, |s| s.auroc));
                }
                println!("seed {seed} {variant:>10}: {}", fmt(&row));
                table.push((variant.clone(), row));
            }
        }
        println!(
            "-- means over seeds: test kept, real kept, acc|kept, flagged {{{}}}, AUROC {{same}}",
            kinds
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        for variant in &variants {
            let rows: Vec<&Vec<f64>> = table
                .iter()
                .filter(|(v, _)| v == variant)
                .map(|(_, r)| r)
                .collect();
            let mean: Vec<f64> = (0..rows[0].len())
                .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / rows.len() as f64)
                .collect();
            println!("{variant:>10}: {}", fmt(&mean));
        }
    }
}

fn fmt(row: &[f64]) -> String {
    row.iter()
        .map(|v| {
            if *v <= 1.0 {
                format!("{v:.3}")
            } else {
                format!("{v:.2}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

struct Scores {
    msp: Vec<f32>,
    /// Negated distances: higher is more digit-like.
    maha: Vec<f32>,
    rmaha: Vec<f32>,
    head: Vec<f32>,
}

struct Rule {
    variant: String,
    msp_at_least: f32,
    feature_at_least: f32,
}

impl Rule {
    fn feature<'a>(&self, s: &'a Scores) -> &'a [f32] {
        if self.variant.contains("rmaha") {
            &s.rmaha
        } else if self.variant.contains("head") {
            &s.head
        } else {
            &s.maha
        }
    }
    fn uses_msp(&self) -> bool {
        self.variant.contains("msp")
    }
    fn uses_feature(&self) -> bool {
        self.variant.contains("maha") || self.variant.contains("head")
    }
    fn single_score(&self, s: &Scores) -> Vec<f32> {
        if self.uses_feature() {
            self.feature(s).to_vec()
        } else {
            s.msp.clone()
        }
    }
    fn keeps(&self, s: &Scores, i: usize) -> bool {
        (!self.uses_msp() || s.msp[i] >= self.msp_at_least)
            && (!self.uses_feature() || self.feature(s)[i] >= self.feature_at_least)
    }
    /// Thresholds keeping `share` of validation digits; in a combination each keeps the
    /// square root of it (their misses overlap, so the union keeps a little more).
    fn choose(variant: &str, val: &Scores, share: f64) -> Rule {
        let mut rule = Rule {
            variant: variant.to_string(),
            msp_at_least: f32::NEG_INFINITY,
            feature_at_least: f32::NEG_INFINITY,
        };
        let each = match rule.uses_msp() && rule.uses_feature() {
            true => share.sqrt(),
            false => share,
        };
        let quantile = |v: &[f32], keep: f64| {
            let mut v = v.to_vec();
            v.sort_by(f32::total_cmp);
            v[((1.0 - keep) * v.len() as f64) as usize]
        };
        if rule.uses_msp() {
            rule.msp_at_least = quantile(&val.msp, each);
        }
        if rule.uses_feature() {
            rule.feature_at_least = quantile(rule.feature(val), each);
        }
        rule
    }
}

/// `[N, D]` features, row-major.
fn features(cnn: &model::Cnn, images: &[[u8; PIXELS]], device: &Device) -> Tensor<2> {
    let parts: Vec<Tensor<2>> = images
        .chunks(2000)
        .map(|chunk| cnn.features(data::images_to_input(chunk.iter(), device)))
        .collect();
    Tensor::cat(parts, 0)
}

struct Gaussians {
    /// Whitening `W^T` for the shared within-class covariance, `[D, D]`.
    whiten: Tensor<2>,
    /// Class means, whitened: `[C, D]`.
    means: Tensor<2>,
    /// Background: whitening for the global covariance and the global mean, whitened.
    whiten0: Tensor<2>,
    mean0: Tensor<2>,
}

impl Gaussians {
    fn fit(f: &Tensor<2>, labels: &[u8], device: &Device) -> Self {
        let [n, d] = f.dims();
        let values: Vec<f32> = f.clone().into_data().to_vec::<f32>().unwrap();
        let mut sums = vec![vec![0f64; d]; 10];
        let mut counts = [0usize; 10];
        for (row, &l) in values.chunks_exact(d).zip(labels) {
            counts[l as usize] += 1;
            for (s, v) in sums[l as usize].iter_mut().zip(row) {
                *s += *v as f64;
            }
        }
        let means: Vec<Vec<f32>> = sums
            .iter()
            .zip(counts)
            .map(|(s, c)| s.iter().map(|v| (*v / c as f64) as f32).collect())
            .collect();
        let mut centred = values.clone();
        for (row, &l) in centred.chunks_exact_mut(d).zip(labels) {
            for (v, m) in row.iter_mut().zip(&means[l as usize]) {
                *v -= m;
            }
        }
        let cov = covariance(centred, n, d, device);
        let whiten = whitening(&cov, d, device);
        let means_t = Tensor::<2>::from_data(TensorData::new(means.concat(), [10, d]), device);
        let global: Vec<f32> = (0..d)
            .map(|j| (sums.iter().map(|s| s[j]).sum::<f64>() / n as f64) as f32)
            .collect();
        let mut centred0 = values;
        for row in centred0.chunks_exact_mut(d) {
            for (v, m) in row.iter_mut().zip(&global) {
                *v -= m;
            }
        }
        let cov0 = covariance(centred0, n, d, device);
        let whiten0 = whitening(&cov0, d, device);
        let mean0 = Tensor::<2>::from_data(TensorData::new(global, [1, d]), device);
        Self {
            means: means_t.matmul(whiten.clone()),
            whiten,
            mean0: mean0.matmul(whiten0.clone()),
            whiten0,
        }
    }

    /// Negated: (min class distance, min class distance − background distance).
    fn distances(&self, f: &Tensor<2>, _device: &Device) -> (Vec<f32>, Vec<f32>) {
        let z: Vec<f32> = f
            .clone()
            .matmul(self.whiten.clone())
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let z0: Vec<f32> = (f.clone().matmul(self.whiten0.clone()) - self.mean0.clone())
            .into_data()
            .to_vec()
            .unwrap();
        let means: Vec<f32> = self.means.clone().into_data().to_vec::<f32>().unwrap();
        let d = self.means.dims()[1];
        let mut maha = Vec::new();
        let mut rmaha = Vec::new();
        for (row, row0) in z.chunks_exact(d).zip(z0.chunks_exact(d)) {
            let back: f32 = row0.iter().map(|v| v * v).sum();
            let best = means
                .chunks_exact(d)
                .map(|m| {
                    row.iter()
                        .zip(m)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f32>()
                })
                .fold(f32::INFINITY, f32::min);
            maha.push(-best);
            rmaha.push(-(best - back));
        }
        (maha, rmaha)
    }
}

fn covariance(centred: Vec<f32>, n: usize, d: usize, device: &Device) -> Vec<f64> {
    let x = Tensor::<2>::from_data(TensorData::new(centred, [n, d]), device);
    let cov: Vec<f32> = (x.clone().transpose().matmul(x) / n as f32)
        .into_data()
        .to_vec()
        .unwrap();
    cov.into_iter().map(f64::from).collect()
}

/// `W^T` with `W = L^{-1}`, `L L^T = cov + ridge`: `x W^T` is whitened.
fn whitening(cov: &[f64], d: usize, device: &Device) -> Tensor<2> {
    let ridge: f64 = std::env::var("RIDGE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1e-3);
    let trace: f64 = (0..d).map(|i| cov[i * d + i]).sum::<f64>() / d as f64;
    let mut a = cov.to_vec();
    for i in 0..d {
        a[i * d + i] += ridge * trace;
    }
    // Cholesky.
    let mut l = vec![0f64; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= l[i * d + k] * l[j * d + k];
            }
            l[i * d + j] = if i == j {
                s.max(1e-12).sqrt()
            } else {
                s / l[j * d + j]
            };
        }
    }
    // Inverse of lower-triangular L.
    let mut w = vec![0f64; d * d];
    for j in 0..d {
        w[j * d + j] = 1.0 / l[j * d + j];
        for i in j + 1..d {
            let mut s = 0.0;
            for k in j..i {
                s += l[i * d + k] * w[k * d + j];
            }
            w[i * d + j] = -s / l[i * d + i];
        }
    }
    // Transpose to W^T.
    let mut wt = vec![0f32; d * d];
    for i in 0..d {
        for j in 0..d {
            wt[j * d + i] = w[i * d + j] as f32;
        }
    }
    Tensor::from_data(TensorData::new(wt, [d, d]), device)
}

/// Logistic regression on standardised features: digit (1) against outlier (0).
struct Head {
    mean: Tensor<2>,
    scale: Tensor<2>,
    w: Tensor<2>,
    b: f32,
}

impl Head {
    fn fit(digits: &Tensor<2>, others: &Tensor<2>, device: &Device) -> Self {
        let [nd, d] = digits.dims();
        let [no, _] = others.dims();
        let x = Tensor::cat(vec![digits.clone(), others.clone()], 0);
        let mean = x.clone().mean_dim(0);
        let scale = (x.clone() - mean.clone())
            .powf_scalar(2.0)
            .mean_dim(0)
            .sqrt()
            + 1e-3;
        let x = (x - mean.clone()) / scale.clone();
        let mut y = vec![1f32; nd];
        y.extend(vec![0f32; no]);
        // Each side weighs half.
        let mut weight = vec![0.5 / nd as f32; nd];
        weight.extend(vec![0.5 / no as f32; no]);
        let y = Tensor::<2>::from_data(TensorData::new(y, [nd + no, 1]), device);
        let weight = Tensor::<2>::from_data(TensorData::new(weight, [nd + no, 1]), device);
        let mut w = Tensor::<2>::zeros([d, 1], device);
        let mut b = 0f32;
        let l2: f32 = std::env::var("L2")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1e-4);
        let lr = 1.0;
        for _ in 0..400 {
            let p = burn::tensor::activation::sigmoid(x.clone().matmul(w.clone()).add_scalar(b));
            let g = (p - y.clone()) * weight.clone();
            let gw = x.clone().transpose().matmul(g.clone()) + w.clone() * l2;
            let gb: f32 = g.sum().into_scalar::<f32>();
            w = w - gw * lr;
            b -= lr * gb;
        }
        Self { mean, scale, w, b }
    }

    fn score(&self, f: &Tensor<2>) -> Vec<f32> {
        ((f.clone() - self.mean.clone()) / self.scale.clone())
            .matmul(self.w.clone())
            .add_scalar(self.b)
            .into_data()
            .to_vec::<f32>()
            .unwrap()
    }
}
