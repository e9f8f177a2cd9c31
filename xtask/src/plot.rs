//! SVG plots for the benchmark report (plotters' SVG backend: text in the SVG, no fonts needed).
//! Each function writes `NAME.svg` into the plot directory and returns the Markdown that shows it.

use anyhow::{Result, anyhow};
use plotters::prelude::*;
use std::path::PathBuf;
use std::sync::OnceLock;

static DIR: OnceLock<(PathBuf, String)> = OnceLock::new();

/// Where plots go (`dir`) and how the report links them (`link_prefix`, relative to the report).
pub(crate) fn set_dir(dir: PathBuf, link_prefix: &str) -> Result<()> {
    std::fs::create_dir_all(&dir)?;
    let _ = DIR.set((dir, link_prefix.to_string()));
    Ok(())
}

fn target(name: &str) -> (PathBuf, String) {
    let (dir, prefix) = DIR.get_or_init(|| (std::env::temp_dir(), String::new()));
    (
        dir.join(format!("{name}.svg")),
        format!("{prefix}{name}.svg"),
    )
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(127, 127, 127),
];

/// One named line of points.
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) points: Vec<(f64, f64)>,
}

impl Series {
    pub(crate) fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
        }
    }
}

/// Axes of a line plot; `log_x`/`log_y` use logarithmic scales (all values must be > 0).
pub(crate) struct Axes<'a> {
    pub(crate) title: &'a str,
    pub(crate) x: &'a str,
    pub(crate) y: &'a str,
    pub(crate) log_x: bool,
    pub(crate) log_y: bool,
}

fn bounds(series: &[Series], pick: impl Fn(&(f64, f64)) -> f64, log: bool) -> (f64, f64) {
    let vals: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(&pick))
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .collect();
    let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (if log { 1.0 } else { 0.0 }, 1.0);
    }
    if log {
        (lo / 1.5, hi * 1.5)
    } else {
        (lo.min(0.0), hi * 1.1 + f64::EPSILON)
    }
}

/// A tick label: on a log axis only 1, 2 and 5 times a power of ten are labelled (the light
/// lines between stay unlabelled); numbers are short (1k, 20k, 0.5).
fn tick(v: f64, log: bool) -> String {
    if log {
        let mantissa = v / 10f64.powf(v.log10().floor());
        if ![1.0, 2.0, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-6) {
            return String::new();
        }
    }
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{}", (v * 1000.0).round() / 1000.0)
    }
}

/// A line plot with points; returns the Markdown image line.
pub(crate) fn lines(name: &str, axes: &Axes<'_>, series: &[Series]) -> Result<String> {
    let (path, link) = target(name);
    {
        let root = SVGBackend::new(&path, (760, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let (x0, x1) = bounds(series, |p| p.0, axes.log_x);
        let (y0, y1) = bounds(series, |p| p.1, axes.log_y);
        let mut b = ChartBuilder::on(&root);
        b.caption(axes.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70);
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(axes.x)
                    .y_desc(axes.y)
                    .max_light_lines(1)
                    .x_label_formatter(&|v| tick(*v, axes.log_x))
                    .y_label_formatter(&|v| tick(*v, axes.log_y))
                    .draw()
                    .map_err(|e| anyhow!("{e}"))?;
                for (i, s) in series.iter().enumerate() {
                    let c = COLORS[i % COLORS.len()];
                    let pts: Vec<(f64, f64)> = s
                        .points
                        .iter()
                        .copied()
                        .filter(|p| {
                            p.0.is_finite()
                                && p.1.is_finite()
                                && (!axes.log_x || p.0 > 0.0)
                                && (!axes.log_y || p.1 > 0.0)
                        })
                        .collect();
                    chart
                        .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                        .map_err(|e| anyhow!("{e}"))?
                        .label(s.name.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                        });
                    chart
                        .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))
                        .map_err(|e| anyhow!("{e}"))?;
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .position(SeriesLabelPosition::UpperLeft)
                    .draw()
                    .map_err(|e| anyhow!("{e}"))?;
            }};
        }
        match (axes.log_x, axes.log_y) {
            (false, false) => draw!(b.build_cartesian_2d(x0..x1, y0..y1)?),
            (true, false) => draw!(b.build_cartesian_2d((x0..x1).log_scale(), y0..y1)?),
            (false, true) => draw!(b.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?),
            (true, true) => {
                draw!(b.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?)
            }
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    Ok(format!("\n![{}]({link})\n", axes.title))
}

/// Horizontal-free grouped bars: one group per category, one bar per series value.
pub(crate) fn bars(
    name: &str,
    title: &str,
    y: &str,
    categories: &[&str],
    series: &[(String, Vec<f64>)],
) -> Result<String> {
    let (path, link) = target(name);
    {
        // Wide enough for every category's label under its bars.
        let width = (110 * categories.len() as u32).max(760);
        let root = SVGBackend::new(&path, (width, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let hi = series
            .iter()
            .flat_map(|s| s.1.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
            * 1.15
            + f64::EPSILON;
        let n = categories.len() as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..n, 0.0..hi)?;
        let cats: Vec<String> = categories.iter().map(|c| c.to_string()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(categories.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 0.01 && i < cats.len() {
                    cats[i].clone()
                } else {
                    String::new()
                }
            })
            .y_desc(y)
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        let k = series.len().max(1) as f64;
        let width = 0.8 / k;
        for (j, (label, values)) in series.iter().enumerate() {
            let c = COLORS[j % COLORS.len()];
            let rects: Vec<_> = values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(i, v)| {
                    let x0 = i as f64 + 0.1 + width * j as f64;
                    Rectangle::new([(x0, 0.0), (x0 + width * 0.95, *v)], c.filled())
                })
                .collect();
            chart
                .draw_series(rects)
                .map_err(|e| anyhow!("{e}"))?
                .label(label.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    Ok(format!("\n![{title}]({link})\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_written_as_svg() {
        let dir = tempfile::tempdir().unwrap();
        set_dir(dir.path().to_path_buf(), "plots/").unwrap();
        let md = bars(
            "b",
            "bars",
            "per second",
            &["full", "resumed"],
            &[
                ("a".into(), vec![1.0, 2.0]),
                ("b".into(), vec![1.5, f64::NAN]),
            ],
        )
        .unwrap();
        assert_eq!(md, "\n![bars](plots/b.svg)\n");
        let md = lines(
            "l",
            &Axes {
                title: "lines",
                x: "x",
                y: "y",
                log_x: true,
                log_y: false,
            },
            &[Series::new("s", vec![(1.0, 2.0), (10.0, 3.0), (0.0, 1.0)])],
        )
        .unwrap();
        assert!(md.contains("plots/l.svg"));
        for f in ["b.svg", "l.svg"] {
            let svg = std::fs::read_to_string(dir.path().join(f)).unwrap();
            assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{f}");
        }
        assert_eq!(tick(20_000.0, true), "20k");
        assert_eq!(tick(3_000.0, true), "");
    }
}
