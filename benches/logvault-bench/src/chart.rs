//! The chart of the query suite: for each query, one bar per system showing its time relative
//! to the baseline (log scale; 1 is the baseline, lower is faster), warm on top, cold below.

use anyhow::anyhow;
use plotters::prelude::*;

use crate::report::{Phase, QuerySection};

const COLORS: [RGBColor; 7] = [
    RGBColor(120, 120, 120),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing the chart: {e}")
}

/// The section's chart as an SVG document.
///
/// # Errors
/// If plotting fails.
pub fn query_chart_svg(section: &QuerySection) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1200, 900)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (top, bottom) = root.split_vertically(450);
        panel(&top, section, true)?;
        panel(&bottom, section, false)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    section: &QuerySection,
    warm: bool,
) -> anyhow::Result<()> {
    let names: Vec<&str> = section.queries.iter().map(|q| q.name.as_str()).collect();
    let n = names.len().max(1);
    let ratio = |q: &str, sys: &str| {
        section
            .get(q, sys)
            .and_then(|r| r.ratio(if warm { Phase::Warm } else { Phase::Cold }))
    };
    let all: Vec<f64> = names
        .iter()
        .flat_map(|q| section.systems.iter().filter_map(move |s| ratio(q, s)))
        .filter(|r| *r > 0.0)
        .collect();
    let lo = all.iter().copied().fold(1.0f64, f64::min) / 1.5;
    // Headroom above the tallest bar for the legend.
    let hi = all.iter().copied().fold(1.0f64, f64::max) * 3.0;
    // Ratios worth a label: powers of two around 1, within the range.
    let ticks: Vec<f64> = (-6..=8)
        .map(|e| 2f64.powi(e))
        .filter(|t| (lo..=hi).contains(t))
        .collect();
    let caption = format!(
        "{} queries at {} rows: time relative to {} (log scale, lower is faster)",
        if warm { "Warm" } else { "Cold" },
        section.rows,
        crate::report::QUERY_BASELINE
    );
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            -0.5f64..(n as f64 - 0.5),
            (lo..hi).log_scale().with_key_points(ticks),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .max_light_lines(0)
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                names
                    .get(i as usize)
                    .map(|s| (*s).to_owned())
                    .unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("ratio to baseline")
        .y_label_formatter(&|y| format!("{y}×"))
        .draw()
        .map_err(err)?;
    let systems = section.systems.len().max(1);
    let width = 0.8 / systems as f64;
    for (s, system) in section.systems.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        let bars = names.iter().enumerate().filter_map(|(i, q)| {
            let r = ratio(q, system)?;
            let x0 = i as f64 - 0.4 + s as f64 * width;
            Some(Rectangle::new(
                [(x0, lo), (x0 + width * 0.9, r)],
                color.filled(),
            ))
        });
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(system.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(-0.5, 1.0), (n as f64 - 0.5, 1.0)],
            BLACK.stroke_width(1),
        )))
        .map_err(err)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_system_and_query() {
        let section = crate::report::tests::sample_section();
        let svg = query_chart_svg(&section).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.contains("logvault-mmk"));
        assert!(svg.contains("count_by_level"));
        assert!(svg.contains("Warm queries at 1000 rows"));
        assert!(svg.contains("Cold queries"));
        assert!(svg.matches("<rect").count() >= 8, "bars drawn");
    }
}
