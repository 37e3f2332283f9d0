//! The project's pictures, drawn with plotters into a pixel buffer and written as PNG: the
//! evaluation's `confusion.png` and `misclassified.png` here, and [`draw_png`] for any other
//! figure (training draws its learning curves with it).

use crate::evaluation::Evaluation;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// DejaVu Sans (see `assets/fonts/DejaVuSans-LICENSE`), embedded so plots need no system fonts.
const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// The font family every figure names; [`draw_png`] registers the embedded font under it.
pub const FONT_FAMILY: &str = "sans-serif";

/// A figure that could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("{}: cannot {action}: {reason}", path.display())]
pub struct FigureError {
    /// The figure's file.
    pub path: PathBuf,
    /// `draw` or `write`.
    pub action: &'static str,
    /// What went wrong, on one line.
    pub reason: String,
}

/// Where a figure is drawn: plotters' bitmap canvas, in pixels from the top-left corner.
pub type Canvas<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// What a drawing step may fail with: plotters' errors, boxed.
pub type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// The confusion matrix's cells, in pixels: side, and the margins for the labels.
const CELL: i32 = 56;
const LEFT: i32 = 90;
const TOP: i32 = 70;

/// Centred black text of `size` points.
fn centred(size: u32) -> TextStyle<'static> {
    (FONT_FAMILY, size)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Center))
}

/// The confusion matrix as a heat map, counts written in the cells.
pub fn write_confusion(evaluation: &Evaluation, path: &Path) -> Result<(), FigureError> {
    let side = (LEFT + 10 * CELL + 30) as u32;
    draw_png(path, side, side + 20, |root| {
        root.draw(&Text::new(
            "Confusion matrix (test set)",
            (side as i32 / 2, 25),
            centred(24),
        ))?;
        root.draw(&Text::new(
            "predicted digit",
            (LEFT + 5 * CELL, TOP - 12 + 10 * CELL + 50),
            centred(18),
        ))?;
        root.draw(&Text::new("true", (25, TOP + 5 * CELL - 10), centred(18)))?;
        root.draw(&Text::new("digit", (25, TOP + 5 * CELL + 12), centred(18)))?;
        for truth in 0..10 {
            let y = TOP + truth as i32 * CELL;
            root.draw(&Text::new(
                truth.to_string(),
                (LEFT - 15, y + CELL / 2),
                centred(17),
            ))?;
            draw_confusion_row(root, &evaluation.confusion[truth], truth, y)?;
        }
        for predicted in 0..10 {
            let x = LEFT + predicted * CELL + CELL / 2;
            root.draw(&Text::new(
                predicted.to_string(),
                (x, TOP + 10 * CELL + 15),
                centred(17),
            ))?;
        }
        Ok(())
    })
}

/// One row of the confusion matrix at height `y`: how the images of digit `truth` were
/// named, each cell shaded by its share of the row.
fn draw_confusion_row(root: &Canvas, counts: &[u32; 10], truth: usize, y: i32) -> DrawResult {
    let row_total: u32 = counts.iter().sum::<u32>().max(1);
    for (predicted, &count) in counts.iter().enumerate() {
        let x = LEFT + predicted as i32 * CELL;
        // Shade by the share of the true digit's images, on a square-root scale so single
        // mistakes still show.
        let share = (f64::from(count) / f64::from(row_total)).sqrt();
        let fade = |depth: f64| (255.0 - depth * share).clamp(0.0, 255.0) as u8;
        let fill = if truth == predicted {
            RGBColor(fade(170.0), fade(60.0), fade(170.0))
        } else {
            RGBColor(255, fade(200.0), fade(200.0))
        };
        let cell = [(x, y), (x + CELL, y + CELL)];
        root.draw(&Rectangle::new(cell, fill.filled()))?;
        root.draw(&Rectangle::new(cell, BLACK.mix(0.25)))?;
        root.draw(&Text::new(
            count.to_string(),
            (x + CELL / 2, y + CELL / 2),
            centred(15),
        ))?;
    }
    Ok(())
}

/// Up to 100 test digits the model got wrong, each labelled `true → predicted`.
pub fn write_misclassified(evaluation: &Evaluation, path: &Path) -> Result<(), FigureError> {
    const SCALE: i32 = 3;
    const COLUMNS: usize = 10;
    const CELL_W: i32 = 28 * SCALE + 16;
    const CELL_H: i32 = 28 * SCALE + 30;
    const TOP: i32 = 50;
    let shown = &evaluation.misclassified[..evaluation.misclassified.len().min(100)];
    let rows = shown.len().div_ceil(COLUMNS).max(1) as i32;
    let width = (COLUMNS as i32 * CELL_W + 16) as u32;
    let height = (TOP + rows * CELL_H + 10) as u32;
    draw_png(path, width, height, |root| {
        let centred = |size| {
            (FONT_FAMILY, size)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Center))
        };
        let title = format!(
            "{} of {} misclassified test digits (true → predicted)",
            shown.len(),
            evaluation.misclassified.len()
        );
        root.draw(&Text::new(title, (width as i32 / 2, 22), centred(20)))?;
        for (index, wrong) in shown.iter().enumerate() {
            let x0 = 8 + (index % COLUMNS) as i32 * CELL_W + 8;
            let y0 = TOP + (index / COLUMNS) as i32 * CELL_H;
            for (i, &pixel) in wrong.pixels.iter().enumerate() {
                // MNIST is light ink on black; print it dark on white, as on paper.
                let shade = 255 - pixel;
                let (px, py) = (x0 + (i % 28) as i32 * SCALE, y0 + (i / 28) as i32 * SCALE);
                root.draw(&Rectangle::new(
                    [(px, py), (px + SCALE, py + SCALE)],
                    RGBColor(shade, shade, shade).filled(),
                ))?;
            }
            let label = format!("{} → {}", wrong.truth, wrong.predicted);
            root.draw(&Text::new(
                label,
                (x0 + 14 * SCALE, y0 + 28 * SCALE + 13),
                centred(16),
            ))?;
        }
        Ok(())
    })
}

/// Draws on a white `width` × `height` canvas and writes it to `path` as a PNG, atomically.
pub fn draw_png(
    path: &Path,
    width: u32,
    height: u32,
    draw: impl FnOnce(&Canvas<'_>) -> DrawResult,
) -> Result<(), FigureError> {
    let fail = |action, reason: String| FigureError {
        path: path.to_path_buf(),
        action,
        reason,
    };
    register_font().map_err(|reason| fail("draw", reason.into()))?;
    let mut pixels = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        draw(&root).map_err(|e| fail("draw", e.to_string()))?;
        root.present().map_err(|e| fail("draw", e.to_string()))?;
    }
    let mut png = Vec::new();
    image::RgbImage::from_raw(width, height, pixels)
        .ok_or_else(|| fail("draw", "the pixel buffer has the wrong size".into()))?
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| fail("draw", e.to_string()))?;
    data::write_atomic(path, &png).map_err(|e| fail("write", e.to_string()))
}

/// Registers the embedded font once per process.
fn register_font() -> Result<(), &'static str> {
    static REGISTERED: OnceLock<Result<(), &'static str>> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT)
            .map_err(|_| "the embedded plot font is not a valid font")
    })
}
