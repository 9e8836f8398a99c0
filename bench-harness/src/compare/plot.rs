//! The latency-vs-throughput curves of the open-loop sweep as an SVG (plotters, line series only).

use plotters::prelude::*;

use super::plan::{ShapeKind, System};
use super::table::Row;

/// One curve per system: each sweep point at (achieved ops/s, p99 ms), log-scaled latency. `None`
/// when the rows hold no sweep point.
pub fn latency_curves_svg(rows: &[Row]) -> Result<Option<String>, String> {
    let curves: Vec<(System, Vec<(f64, f64)>)> = System::ALL
        .iter()
        .map(|&s| {
            let points = rows
                .iter()
                .filter(|r| r.system == s && r.shape == ShapeKind::Sweep)
                // Microseconds are far below 2^53: exact.
                .map(|r| (r.throughput, (r.p99_us as f64 / 1000.0).max(0.01)))
                .collect::<Vec<_>>();
            (s, points)
        })
        .filter(|(_, points)| !points.is_empty())
        .collect();
    if curves.is_empty() {
        return Ok(None);
    }
    let all = curves.iter().flat_map(|(_, p)| p.iter());
    let (max_x, min_y, max_y) = all.fold((1.0f64, f64::MAX, 0.0f64), |(mx, lo, hi), &(x, y)| {
        (mx.max(x), lo.min(y), hi.max(y))
    });
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "p99 latency vs throughput (game updates, open loop)",
                ("sans-serif", 20),
            )
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(
                0.0..max_x * 1.05,
                ((min_y / 1.5).max(0.01)..max_y * 1.5).log_scale(),
            )
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("achieved ops/s")
            .y_desc("p99 ms (log)")
            .draw()
            .map_err(|e| e.to_string())?;
        let palette = [
            RGBColor(0x1f, 0x77, 0xb4),
            RGBColor(0xd6, 0x27, 0x28),
            RGBColor(0x2c, 0xa0, 0x2c),
            RGBColor(0xff, 0x7f, 0x0e),
        ];
        for (i, (system, points)) in curves.iter().enumerate() {
            let color = palette[i % palette.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(system.name())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(Some(svg))
}
