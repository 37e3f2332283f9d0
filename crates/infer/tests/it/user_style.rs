//! Real people's pictures are not MNIST: this turns MNIST test digits into photo-like pages
//! and checks the preprocessing brings the network's accuracy back to what it is on MNIST.

use data::{MnistDataset, PIXELS, Split, preprocess_bytes};
use image::{DynamicImage, GrayImage, ImageFormat, Luma, imageops};
use infer::{DigitClassifier, ModelSource};
use std::io::Cursor;
use std::path::Path;

/// A small deterministic generator, so the test is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

/// Dark ink on light paper, scaled up, off-centre on a larger page, with noise, as a JPEG.
fn photo_like(pixels: &[u8; PIXELS], rng: &mut Rng) -> Vec<u8> {
    let digit = GrayImage::from_raw(28, 28, pixels.to_vec()).expect("28×28");
    let side = 28 * (3 + rng.below(5));
    let digit = imageops::resize(&digit, side, side, imageops::FilterType::CatmullRom);
    let (page_w, page_h) = (side * 2 + rng.below(200), side + 40 + rng.below(200));
    let paper = 200 + rng.below(50) as u8;
    let ink = 10 + rng.below(60) as u8;
    let (left, top) = (rng.below(page_w - side), rng.below(page_h - side));
    let mut page = GrayImage::from_fn(page_w, page_h, |x, y| {
        let strength = if (left..left + side).contains(&x) && (top..top + side).contains(&y) {
            f32::from(digit.get_pixel(x - left, y - top)[0]) / 255.0
        } else {
            0.0
        };
        let shade = f32::from(paper) * (1.0 - strength) + f32::from(ink) * strength;
        Luma([shade as u8])
    });
    for pixel in page.pixels_mut() {
        let noise = rng.below(25) as i32 - 12;
        pixel[0] = (i32::from(pixel[0]) + noise).clamp(0, 255) as u8;
    }
    let mut jpeg = Vec::new();
    DynamicImage::ImageLuma8(page)
        .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
        .expect("JPEG encoding works in memory");
    jpeg
}

#[test]
fn photo_like_digits_are_classified_as_well_as_raw_ones() {
    let test = MnistDataset::load(&crate::root().join("data/mnist"), Split::Test).unwrap();
    let classifier =
        DigitClassifier::load(&ModelSource::Shipped, burn::tensor::Device::flex()).unwrap();
    let count = 1000;
    let items: Vec<_> = (0..count).filter_map(|i| test.item(i)).collect();

    let raw: Vec<[u8; PIXELS]> = items.iter().map(|item| item.pixels).collect();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let photos: Vec<[u8; PIXELS]> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let jpeg = photo_like(&item.pixels, &mut rng);
            preprocess_bytes(&jpeg, Path::new(&format!("photo-{i}.jpg"))).unwrap()
        })
        .collect();

    let accuracy = |inputs: &[[u8; PIXELS]]| {
        let predictions = classifier.classify(inputs).unwrap();
        let correct = predictions
            .iter()
            .zip(&items)
            .filter(|(p, item)| p.digit == usize::from(item.label))
            .count();
        100.0 * correct as f64 / items.len() as f64
    };
    let (raw_accuracy, photo_accuracy) = (accuracy(&raw), accuracy(&photos));
    println!("raw {raw_accuracy:.1}%, photo-like {photo_accuracy:.1}%");
    assert!(raw_accuracy > 95.0, "raw accuracy {raw_accuracy}%");
    assert!(
        photo_accuracy >= raw_accuracy - 1.5,
        "photo-like {photo_accuracy:.1}% vs raw {raw_accuracy:.1}%"
    );
}
