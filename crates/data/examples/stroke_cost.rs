//! What the stroke correction costs: preprocessing a decoded picture with it and without it
//! (`data::to_mnist_keeping_stroke`), on large pictures of a 0 drawn with a fine, an ordinary
//! and a broad pen. `cargo run --release -p data --example stroke_cost`; the best of five runs.

use image::{DynamicImage, GrayImage, Luma};
use std::time::Instant;

/// A dark ring (a 0) on a white `side`-pixel square, `across` pixels wide, drawn with a
/// `pen`-pixel pen.
fn ring(side: u32, across: f64, pen: f64) -> DynamicImage {
    let centre = f64::from(side) / 2.0;
    DynamicImage::ImageLuma8(GrayImage::from_fn(side, side, |x, y| {
        let distance = (f64::from(x) - centre).hypot(f64::from(y) - centre);
        let inked = distance <= across / 2.0 && distance > across / 2.0 - pen;
        Luma([if inked { 0 } else { 255 }])
    }))
}

/// The fastest of five runs of `preprocess` on `picture`, in milliseconds.
fn best_of_five(
    preprocess: fn(&DynamicImage) -> Option<[u8; data::PIXELS]>,
    picture: &DynamicImage,
) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            preprocess(picture).expect("a ring has ink");
            start.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    for (name, picture) in [
        (
            "4096 px, a 3000-px 0 in a 4-px pen (thickened)",
            ring(4096, 3000.0, 4.0),
        ),
        (
            "4096 px, a 3000-px 0 in a 330-px pen (left as it is)",
            ring(4096, 3000.0, 330.0),
        ),
        (
            "4096 px, a 600-px 0 in a 250-px pen (thinned)",
            ring(4096, 600.0, 250.0),
        ),
        (
            "1000 px, a 200-px 0 in an 80-px pen (thinned)",
            ring(1000, 200.0, 80.0),
        ),
    ] {
        println!(
            "{name}: {:.1} ms with the correction, {:.1} ms without",
            best_of_five(data::to_mnist, &picture),
            best_of_five(data::to_mnist_keeping_stroke, &picture)
        );
    }
}
