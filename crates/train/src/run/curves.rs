//! `curves.png`: loss and accuracy per epoch, on the training and the held-out images, drawn
//! with the figures module `infer` draws its evaluation figures with.

use crate::fit::report::EpochRow;
use infer::figures::{Canvas, DrawResult, FONT_FAMILY, FigureError, draw_png};
use plotters::prelude::*;
use std::path::Path;

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 450;

/// Draws the learning curves of `rows` and writes them to `path` as a PNG; `held_out` names
/// the images scored after each epoch (`validation` or `test`) in the legends.
pub fn write_curves(rows: &[EpochRow], held_out: &str, path: &Path) -> Result<(), FigureError> {
    draw_png(path, WIDTH, HEIGHT, |root| {
        let (left, right) = root.split_horizontally(WIDTH / 2);
        let loss = |r: &EpochRow| (r.train_loss, r.held_out_loss);
        let accuracy = |r: &EpochRow| (r.train_accuracy, r.held_out_accuracy);
        // Loss falls and accuracy rises: keep each legend in the corner its curves leave free.
        let upper = SeriesLabelPosition::UpperRight;
        panel(
            &left,
            rows,
            held_out,
            ("Loss", "cross-entropy"),
            upper,
            loss,
        )?;
        let lower = SeriesLabelPosition::LowerRight;
        panel(
            &right,
            rows,
            held_out,
            ("Accuracy", "accuracy (%)"),
            lower,
            accuracy,
        )
    })
}

/// The ranges of a chart of `(epoch, train, test)` points: every epoch, and every value with
/// a little room above and below.
fn axes(points: &[(f64, f64, f64)]) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
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
    (first..last, (low - pad)..(high + pad))
}

/// One chart: the train and test series of `values` against the epoch.
fn panel(
    area: &Canvas<'_>,
    rows: &[EpochRow],
    held_out: &str,
    (title, y_label): (&str, &str),
    legend_at: SeriesLabelPosition,
    values: impl Fn(&EpochRow) -> (f64, f64),
) -> DrawResult {
    let points: Vec<(f64, f64, f64)> = rows
        .iter()
        .map(|r| {
            let (train, test) = values(r);
            (r.epoch as f64, train, test)
        })
        .filter(|(_, a, b)| a.is_finite() && b.is_finite())
        .collect();
    let (epochs, values) = axes(&points);
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT_FAMILY, 26))
        .margin(18)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(epochs, values)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_labels(points.len().clamp(2, 12))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc(y_label)
        .label_style((FONT_FAMILY, 15))
        .axis_desc_style((FONT_FAMILY, 17))
        .draw()?;
    for (name, colour, pick) in [("train", BLUE, 1usize), (held_out, RED, 2usize)] {
        let series = points
            .iter()
            .map(|p| (p.0, if pick == 1 { p.1 } else { p.2 }));
        chart
            .draw_series(LineSeries::new(series, colour.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .label_font((FONT_FAMILY, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(legend_at)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: usize, loss: f64, accuracy: f64) -> EpochRow {
        EpochRow {
            epoch,
            train_loss: loss,
            train_accuracy: accuracy,
            held_out_loss: loss * 0.9,
            held_out_accuracy: accuracy + 0.5,
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
        write_curves(&rows, "test", &path).unwrap();
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
        write_curves(
            &[row(1, 0.5, 80.0)],
            "validation",
            &dir.path().join("one.png"),
        )
        .unwrap();
    }
}
