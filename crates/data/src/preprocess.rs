//! Any picture of a digit → the 28×28 grey image MNIST would have, ink bright on dark.

use crate::PIXELS;
use image::imageops::FilterType;
use image::{DynamicImage, ImageReader, Limits};
use model::IMAGE_SIDE;
use std::path::{Path, PathBuf};

/// Why an image could not be turned into a network input. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a readable image: {reason}")]
    Decode { path: PathBuf, reason: String },
}

/// Largest width or height accepted, so a hostile header cannot ask for gigabytes.
const MAX_SIDE: u32 = 16_384;

/// Decodes `path` and returns the 28×28 image the network expects.
///
/// This is deliberately simple: grey, inverted when the background is light, resized to 28×28.
pub fn preprocess_image(path: &Path) -> Result<[u8; PIXELS], PreprocessError> {
    let decode = |reason: String| PreprocessError::Decode {
        path: path.to_path_buf(),
        reason,
    };
    let mut reader = ImageReader::open(path)
        .map_err(|source| PreprocessError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .with_guessed_format()
        .map_err(|source| PreprocessError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| decode(e.to_string()))?;
    Ok(to_mnist_like(&image))
}

fn to_mnist_like(image: &DynamicImage) -> [u8; PIXELS] {
    let side = IMAGE_SIDE as u32;
    let grey = image
        .resize_exact(side, side, FilterType::Triangle)
        .into_luma8();
    let mut pixels: [u8; PIXELS] = grey
        .into_raw()
        .try_into()
        .expect("a 28×28 grey image has 784 pixels");
    if background_is_light(&pixels) {
        for p in &mut pixels {
            *p = 255 - *p;
        }
    }
    pixels
}

/// MNIST digits are light ink on black; judge the background by the border pixels.
fn background_is_light(pixels: &[u8; PIXELS]) -> bool {
    let n = IMAGE_SIDE;
    let border = (0..n).flat_map(|i| [i, (n - 1) * n + i, i * n, i * n + n - 1]);
    let (sum, count) = border.fold((0u32, 0u32), |(s, c), i| (s + u32::from(pixels[i]), c + 1));
    sum / count > 127
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};

    fn save(dir: &tempfile::TempDir, name: &str, image: &GrayImage) -> PathBuf {
        let path = dir.path().join(name);
        image.save(&path).unwrap();
        path
    }

    fn bar(background: u8, ink: u8) -> GrayImage {
        GrayImage::from_fn(56, 56, |x, _| {
            if (24..32).contains(&x) {
                Luma([ink])
            } else {
                Luma([background])
            }
        })
    }

    #[test]
    fn dark_ink_on_light_paper_is_inverted() {
        let dir = tempfile::tempdir().unwrap();
        let pixels = preprocess_image(&save(&dir, "paper.png", &bar(255, 0))).unwrap();
        assert_eq!(pixels[0], 0, "background becomes black");
        assert!(pixels[14 * 28 + 14] > 200, "ink becomes bright");
    }

    #[test]
    fn light_ink_on_dark_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let pixels = preprocess_image(&save(&dir, "dark.png", &bar(0, 255))).unwrap();
        assert_eq!(pixels[0], 0);
        assert!(pixels[14 * 28 + 14] > 200);
    }

    #[test]
    fn garbage_and_empty_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [("empty.png", &b""[..]), ("text.png", b"not an image")] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let err = preprocess_image(&path).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        let err = preprocess_image(Path::new("/no/such.png")).unwrap_err();
        assert!(err.to_string().contains("/no/such.png"), "{err}");
    }
}
