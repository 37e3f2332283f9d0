//! `curves.png`: loss and accuracy per epoch, train and test, drawn with plotters.

use crate::report::EpochRow;
use anyhow::anyhow;
use data::write_atomic;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// DejaVu Sans (see `assets/fonts/DejaVuSans-LICENSE`), embedded so plots need no system fonts.
const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
const WIDTH: u32 = 1200;
const HEIGHT: u32 = 450;

/// Draws the learning curves of `rows` and writes them to `path` as a PNG.
pub fn write_curves(rows: &[EpochRow], path: &Path) -> anyhow::Result<()> {
    register_font()?;
    let mut pixels = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let (left, right) = root.split_horizontally(WIDTH / 2);
        let loss = |r: &EpochRow| (r.train_loss, r.valid_loss);
        let accuracy = |r: &EpochRow| (r.train_accuracy, r.valid_accuracy);
        // Loss falls and accuracy rises: keep each legend in the corner its curves leave free.
        let upper = SeriesLabelPosition::UpperRight;
        panel(&left, rows, "Loss", "cross-entropy", upper, loss)?;
        let lower = SeriesLabelPosition::LowerRight;
        panel(&right, rows, "Accuracy", "accuracy (%)", lower, accuracy)?;
        root.present().map_err(plot_error)?;
    }
    let image = image::RgbImage::from_raw(WIDTH, HEIGHT, pixels)
        .ok_or_else(|| anyhow!("plot buffer has the wrong size"))?;
    let mut png = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    write_atomic(path, &png).map_err(|e| anyhow!("{}: cannot write: {e}", path.display()))
}

/// One chart: the train and test series of `values` against the epoch.
fn panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    rows: &[EpochRow],
    title: &str,
    y_label: &str,
    legend_at: SeriesLabelPosition,
    values: impl Fn(&EpochRow) -> (f64, f64),
) -> anyhow::Result<()> {
    let points: Vec<(f64, f64, f64)> = rows
        .iter()
        .map(|r| {
            let (train, test) = values(r);
            (r.epoch as f64, train, test)
        })
        .filter(|(_, a, b)| a.is_finite() && b.is_finite())
        .collect();
    let first = points.first().map_or(1.0, |p| p.0);
    let last = points.last().map_or(1.0, |p| p.0).max(first + 1.0);
    let (low, high) = points
        .iter()
        .flat_map(|p| [p.1, p.2])
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let (low, high) = if low.is_finite() {
        (low, high)
    } else {
        (0.0, 1.0)
    };
    let pad = ((high - low) * 0.08).max(1e-3);

    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 26))
        .margin(18)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(first..last, (low - pad)..(high + pad))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_labels(points.len().clamp(2, 12))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc(y_label)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(plot_error)?;
    for (name, colour, pick) in [("train", BLUE, 1usize), ("test", RED, 2usize)] {
        let series = points
            .iter()
            .map(|p| (p.0, if pick == 1 { p.1 } else { p.2 }));
        chart
            .draw_series(LineSeries::new(series, colour.stroke_width(2)))
            .map_err(plot_error)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(legend_at)
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

fn register_font() -> anyhow::Result<()> {
    static REGISTER: Once = Once::new();
    let mut result = Ok(());
    REGISTER.call_once(|| {
        result = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| anyhow!("the embedded plot font is not a valid font"));
    });
    result
}

fn plot_error<E: std::error::Error>(error: E) -> anyhow::Error {
    anyhow!("cannot draw the plot: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: usize, loss: f64, accuracy: f64) -> EpochRow {
        EpochRow {
            epoch,
            train_loss: loss,
            train_accuracy: accuracy,
            valid_loss: loss * 0.9,
            valid_accuracy: accuracy + 0.5,
            seconds: 1.0,
            images_per_second: 1000.0,
        }
    }

    #[test]
    fn curves_are_a_png_with_both_series() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        let rows: Vec<_> = (1..=5)
            .map(|e| row(e, 1.0 / e as f64, 90.0 + e as f64))
            .collect();
        write_curves(&rows, &path).unwrap();
        let image = image::open(&path).unwrap().to_rgb8();
        assert_eq!(image.dimensions(), (WIDTH, HEIGHT));
        let has = |colour: [u8; 3]| image.pixels().any(|p| p.0 == colour);
        assert!(has([0, 0, 255]), "the train series is drawn in blue");
        assert!(has([255, 0, 0]), "the test series is drawn in red");
        let dark = image
            .pixels()
            .filter(|p| p.0.iter().all(|&c| c < 80))
            .count();
        assert!(
            dark > 2000,
            "axes, labels and legend text are drawn ({dark} dark pixels)"
        );
    }

    #[test]
    fn a_single_epoch_still_plots() {
        let dir = tempfile::tempdir().unwrap();
        write_curves(&[row(1, 0.5, 80.0)], &dir.path().join("one.png")).unwrap();
    }
}
