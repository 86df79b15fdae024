//! `calibration.html`: the calibration's numbers and pictures in one self-contained page, in `report`'s
//! style (inline SVG drawn with plotters in the embedded font, no scripts, no network): the temperature and
//! the fit, then per split the metrics before and after, a reliability diagram per class, the score
//! distributions of each class's own positions, and the Brier scores.

use plotters::chart::MeshStyle;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::metrics::{SplitMetrics, RELIABILITY_BINS};
use super::{CalibrateOptions, CalibrationSummary, SplitReport, CLASS_NAMES};
use crate::report::chart::{extent, register_font, tempdir_png, ChartFormat};
use crate::report::html::escape;
use crate::report::ReportError;

const STYLE: &str = "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1100px}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px}h3{font-size:15px}table{border-collapse:collapse;font-size:13px}\
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td.l,th.l{text-align:left}\
th{background:#f3f3f3}.row{display:flex;flex-wrap:wrap;gap:8px}.row svg{max-width:100%;height:auto}\
p.note{font-size:13px;color:#555}code{font-size:12px}";

const ORIGINAL: RGBColor = RGBColor(31, 119, 180);
const CALIBRATED: RGBColor = RGBColor(44, 160, 44);
const W: u32 = 360;
const H: u32 = 320;

/// The page, and each chart as its own file when a format was asked for.
pub struct Rendered {
    pub html: String,
    /// `(slug, bytes)` of each chart, in page order (empty without `--format`).
    pub charts: Vec<(String, Vec<u8>)>,
    format: Option<ChartFormat>,
}

impl Rendered {
    /// Puts `chart` on the page (inline SVG) and, with `--format`, renders its own file.
    fn add(&mut self, slug: &str, chart: Chart) -> Result<(), ReportError> {
        self.html.push_str(&chart.svg()?);
        if let Some(format) = self.format {
            let bytes = match format {
                ChartFormat::Svg => chart.svg()?.into_bytes(),
                ChartFormat::Png => chart.png(slug)?,
            };
            self.charts.push((slug.to_string(), bytes));
        }
        Ok(())
    }
}

/// One chart of the page, drawn on any plotters backend.
enum Chart<'a> {
    Lines {
        title: String,
        /// x and y axis descriptions.
        axes: (&'a str, &'a str),
        lines: Vec<Line>,
        range: Option<((f64, f64), (f64, f64))>,
        legend: SeriesLabelPosition,
    },
    Histogram {
        title: String,
        original: &'a [u64],
        calibrated: &'a [u64],
    },
    Brier {
        original: &'a [f64; 3],
        calibrated: &'a [f64; 3],
    },
    Map {
        temperature: [f32; 3],
    },
}

impl Chart<'_> {
    fn size(&self) -> (u32, u32) {
        match self {
            Chart::Brier { .. } => (W + 120, H),
            Chart::Map { .. } => (H + 40, H + 40),
            _ => (W, H),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), ReportError> {
        match self {
            Chart::Lines {
                title,
                axes,
                lines,
                range,
                legend,
            } => line_chart(root, title, *axes, lines, *range, legend.clone()),
            Chart::Histogram {
                title,
                original,
                calibrated,
            } => histogram(root, title, original, calibrated),
            Chart::Brier {
                original,
                calibrated,
            } => brier_chart(root, original, calibrated),
            Chart::Map { temperature } => map_chart(root, temperature),
        }
    }

    fn svg(&self) -> Result<String, ReportError> {
        let mut out = String::new();
        self.draw(SVGBackend::with_string(&mut out, self.size()).into_drawing_area())?;
        Ok(svg_string(out))
    }

    fn png(&self, slug: &str) -> Result<Vec<u8>, ReportError> {
        let dir = tempdir_png()?;
        let path = dir.join(format!("{slug}.png"));
        self.draw(BitMapBackend::new(&path, self.size()).into_drawing_area())?;
        let bytes = std::fs::read(&path).map_err(|source| ReportError::Read {
            path: path.clone(),
            source,
        });
        let _ = std::fs::remove_dir_all(&dir);
        bytes
    }
}

/// A file-name part: lower case, spaces as `-` (`Non-splice site` → `non-splice-site`).
fn slug(name: &str) -> String {
    name.to_lowercase().replace(' ', "-")
}

/// The whole page.
pub fn render(s: &CalibrationSummary, opts: &CalibrateOptions) -> Result<Rendered, ReportError> {
    register_font();
    let mut page = Rendered {
        html: String::new(),
        charts: Vec::new(),
        format: opts.chart_format,
    };
    page.html
        .push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.html
        .push_str("<title>openspliceai-rs calibration</title>\n");
    page.html
        .push_str(&format!("<style>{STYLE}</style>\n</head>\n<body>\n"));
    page.html.push_str("<h1>openspliceai-rs calibration</h1>\n");
    page.html.push_str(&format!(
        "<p>Model <code>{}</code> ({}nt). Temperature (non-splice, acceptor, donor): <code>{}</code>, {}.</p>\n",
        escape(&opts.model.display().to_string()),
        opts.flank.flank,
        escape(&s.temperature.numpy_text()),
        match (&s.fit, &opts.temperature_file) {
            (Some(f), _) => format!(
                "fitted on the validation set in {} steps (learning rate cut {} times)",
                f.steps.len(),
                f.lr_cuts()
            ),
            (None, Some(p)) => format!("read from <code>{}</code>", escape(&p.display().to_string())),
            (None, None) => "given".into(),
        }
    ));
    page.html.push_str(
        "<p class=\"note\">Calibrated probabilities are <code>softmax(logits / T)</code>, one T per class; \
the model's weights are unchanged. Use them with <code>--temperature temperature.txt</code> in \
<code>predict</code>, <code>variant</code> and <code>test</code>.</p>\n",
    );
    if let Some(f) = &s.fit {
        page.html.push_str("<h2>Fit</h2>\n<div class=\"row\">\n");
        let loss: Vec<(f64, f64)> = f
            .steps
            .iter()
            .enumerate()
            .map(|(i, st)| (i as f64 + 1.0, st.loss as f64))
            .collect();
        page.add(
            "fit-nll",
            Chart::Lines {
                title: "Validation NLL per step".into(),
                axes: ("step", "NLL"),
                lines: vec![Line::new("NLL", ORIGINAL, loss)],
                range: None,
                legend: SeriesLabelPosition::UpperRight,
            },
        )?;
        let colors = [
            RGBColor(127, 127, 127),
            RGBColor(255, 127, 14),
            RGBColor(148, 103, 189),
        ];
        let lines: Vec<Line> = (0..3)
            .map(|c| {
                Line::new(
                    CLASS_NAMES[c],
                    colors[c],
                    f.steps
                        .iter()
                        .enumerate()
                        .map(|(i, st)| (i as f64 + 1.0, st.temperature[c] as f64))
                        .collect(),
                )
            })
            .collect();
        page.add(
            "fit-temperature",
            Chart::Lines {
                title: "Temperature per step".into(),
                axes: ("step", "T"),
                lines,
                range: None,
                legend: SeriesLabelPosition::UpperLeft,
            },
        )?;
        page.html.push_str("</div>\n");
    }
    page.html.push_str(
        "<h2>Calibration map</h2>\n<p class=\"note\">Where the temperature moves a probability vector: \
points on a grid of the simplex (acceptor, donor probabilities; non-splice is the rest), each arrow from \
the original to the calibrated probabilities, coloured by the original's most probable class, as \
upstream's <code>calibration_map.png</code>.</p>\n<div class=\"row\">\n",
    );
    page.add(
        "map",
        Chart::Map {
            temperature: s.temperature.values(),
        },
    )?;
    page.html.push_str("</div>\n");
    for split in &s.splits {
        split_section(&mut page, split)?;
    }
    page.html.push_str("</body>\n</html>\n");
    Ok(page)
}

fn split_section(page: &mut Rendered, r: &SplitReport) -> Result<(), ReportError> {
    let h = format!(
        "<h2>{}</h2>\n<p class=\"note\"><code>{}</code>: {} windows, {} positions{}.</p>\n",
        r.name,
        escape(&r.path.display().to_string()),
        r.windows,
        r.positions,
        if r.dropped > 0 {
            " (the odd last window left out, as upstream does)"
        } else {
            ""
        }
    );
    page.html.push_str(&h);
    page.html
        .push_str(&metrics_table(&r.original, &r.calibrated));
    page.html.push_str(
        "<h3>Reliability</h3>\n<p class=\"note\">Per class, positions binned by their probability for \
the class (30 equal bins); x: mean probability in the bin, y: share of the bin's positions that are \
of the class. The diagonal is perfect calibration.</p>\n<div class=\"row\">\n",
    );
    for (c, name) in CLASS_NAMES.iter().enumerate() {
        let pts = |m: &SplitMetrics| -> Vec<(f64, f64)> {
            let cv = &m.curves[c];
            cv.prob_pred
                .iter()
                .copied()
                .zip(cv.prob_true.iter().copied())
                .collect()
        };
        let mut diagonal = Line::new(
            "perfect",
            RGBColor(120, 120, 120),
            vec![(0.0, 0.0), (1.0, 1.0)],
        );
        diagonal.markers = false;
        diagonal.dashed = true;
        page.add(
            &format!("{}-reliability-{}", r.name, slug(name)),
            Chart::Lines {
                title: name.to_string(),
                axes: ("predicted probability", "observed frequency"),
                lines: vec![
                    diagonal,
                    Line::new("original", ORIGINAL, pts(&r.original)),
                    Line::new("calibrated", CALIBRATED, pts(&r.calibrated)),
                ],
                range: Some(((0.0, 1.0), (0.0, 1.0))),
                legend: SeriesLabelPosition::LowerRight,
            },
        )?;
    }
    page.html.push_str(
        "</div>\n<h3>Score distributions</h3>\n<p class=\"note\">Each class's probability at the \
positions of that class, in 30 bins, before and after (1 + count on a log scale).</p>\n<div class=\"row\">\n",
    );
    for (c, name) in CLASS_NAMES.iter().enumerate() {
        page.add(
            &format!("{}-scores-{}", r.name, slug(name)),
            Chart::Histogram {
                title: format!("{name} positions"),
                original: &r.original.histograms[c],
                calibrated: &r.calibrated.histograms[c],
            },
        )?;
    }
    page.html
        .push_str("</div>\n<h3>Brier scores</h3>\n<div class=\"row\">\n");
    page.add(
        &format!("{}-brier", r.name),
        Chart::Brier {
            original: &r.original.brier,
            calibrated: &r.calibrated.brier,
        },
    )?;
    page.html.push_str("</div>\n");
    Ok(())
}

fn metrics_table(o: &SplitMetrics, c: &SplitMetrics) -> String {
    let mut h = String::from(
        "<table>\n<tr><th class=\"l\">metric</th><th>original</th><th>calibrated</th><th>change</th></tr>\n",
    );
    let mut row = |name: String, a: f64, b: f64| {
        let change = if a != 0.0 {
            format!("{:+.1}%", 100.0 * (b - a) / a)
        } else {
            "–".into()
        };
        h.push_str(&format!(
            "<tr><td class=\"l\">{}</td><td>{a:.8}</td><td>{b:.8}</td><td>{change}</td></tr>\n",
            escape(&name)
        ));
    };
    row("NLL".into(), o.nll as f64, c.nll as f64);
    row("ECE (15 bins)".into(), o.ece as f64, c.ece as f64);
    for (k, name) in CLASS_NAMES.iter().enumerate() {
        row(format!("Brier, {name}"), o.brier[k], c.brier[k]);
    }
    h.push_str("</table>\n");
    h
}

/// One line of a chart.
struct Line {
    label: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
    markers: bool,
    dashed: bool,
}

impl Line {
    fn new(label: &str, color: RGBColor, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.to_string(),
            color,
            points,
            markers: true,
            dashed: false,
        }
    }
}

fn draw_err(chart: &str) -> impl Fn(String) -> ReportError + '_ {
    move |message| ReportError::Draw {
        chart: chart.to_string(),
        message,
    }
}

/// Upstream's calibration map: the points of a 20 × 20 grid over (non-splice, acceptor) probabilities
/// that lie on the simplex (donor = 1 − the two), each with its calibrated vector:
/// `softmax(log(clip(p, 1e-8, 1)) / clamp(T))`.
pub fn calibration_map(temperature: &[f32; 3]) -> Vec<([f64; 3], [f64; 3])> {
    let t = temperature.map(|x| super::temperature::clamp(x) as f64);
    let grid: Vec<f64> = (0..20).map(|i| i as f64 / 19.0).collect();
    let mut out = Vec::new();
    for &p1 in &grid {
        for &p0 in &grid {
            let p2 = 1.0 - p0 - p1;
            if !(0.0..=1.0).contains(&p2) {
                continue;
            }
            let p = [p0, p1, p2];
            let z = [0, 1, 2].map(|c| p[c].clamp(1e-8, 1.0).ln() / t[c]);
            let m = z.iter().copied().fold(f64::MIN, f64::max);
            let e = z.map(|v| (v - m).exp());
            let sum: f64 = e.iter().sum();
            out.push((p, e.map(|v| v / sum)));
        }
    }
    out
}

/// The calibration map drawn: arrows in the (acceptor, donor) plane inside the simplex's triangle.
fn map_chart<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    temperature: &[f32; 3],
) -> Result<(), ReportError> {
    let title = "Calibration map";
    let err = draw_err(title);
    let mut chart = new_chart(&root, title, 46, (-0.02, 1.02f64), (-0.02, 1.02f64), &err)?;
    house_style(&mut chart.configure_mesh())
        .x_desc("acceptor probability")
        .y_desc("donor probability")
        .x_labels(6)
        .y_labels(6)
        .draw()
        .map_err(|e| err(format!("{e:?}")))?;
    let edges = vec![(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (0.0, 0.0)];
    chart
        .draw_series(LineSeries::new(edges, BLACK.stroke_width(1)))
        .map_err(|e| err(format!("{e:?}")))?;
    let colors = [
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(31, 119, 180),
    ];
    for (c, name) in CLASS_NAMES.iter().enumerate() {
        let arrows: Vec<([f64; 3], [f64; 3])> = calibration_map(temperature)
            .into_iter()
            .filter(|(p, _)| argmax(p) == c)
            .collect();
        let color = colors[c];
        chart
            .draw_series(arrows.iter().map(|(p, q)| {
                PathElement::new(vec![(p[1], p[2]), (q[1], q[2])], color.stroke_width(1))
            }))
            .map_err(|e| err(format!("{e:?}")))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                arrows
                    .iter()
                    .map(|(_, q)| Circle::new((q[1], q[2]), 2, color.filled())),
            )
            .map_err(|e| err(format!("{e:?}")))?;
    }
    legend_and_present(&mut chart, &root, SeriesLabelPosition::UpperRight, &err)
}

/// numpy's argmax: the first largest.
fn argmax(p: &[f64; 3]) -> usize {
    (1..3).fold(0, |best, i| if p[i] > p[best] { i } else { best })
}

/// A white chart with the page's caption, margins and axis areas over f64 ranges.
fn new_chart<'b, DB: DrawingBackend + 'b>(
    root: &'b DrawingArea<DB, Shift>,
    title: &str,
    y_label_area: u32,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    err: &dyn Fn(String) -> ReportError,
) -> Result<Chart2d<'b, DB>, ReportError> {
    root.fill(&WHITE).map_err(|e| err(format!("{e:?}")))?;
    ChartBuilder::on(root)
        .caption(title, ("sans-serif", 15))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(y_label_area)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(format!("{e:?}")))
}

/// The page's grid and label style on a chart's mesh.
fn house_style<'m, 'a, 'b, DB: DrawingBackend>(
    mesh: &'m mut MeshStyle<'a, 'b, RangedCoordf64, RangedCoordf64, DB>,
) -> &'m mut MeshStyle<'a, 'b, RangedCoordf64, RangedCoordf64, DB> {
    mesh.label_style(("sans-serif", 11))
        .axis_desc_style(("sans-serif", 12))
        .light_line_style(RGBColor(242, 242, 242))
        .bold_line_style(RGBColor(215, 215, 215))
}

type Chart2d<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws bars in one colour as one labelled series.
fn bar_series<'b, DB: DrawingBackend + 'b>(
    chart: &mut Chart2d<'b, DB>,
    bars: impl Iterator<Item = Rectangle<(f64, f64)>>,
    label: &str,
    color: RGBAColor,
    err: &dyn Fn(String) -> ReportError,
) -> Result<(), ReportError> {
    chart
        .draw_series(bars)
        .map_err(|e| err(format!("{e:?}")))?
        .label(label)
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
    Ok(())
}

/// The legend box at `position`, then the chart presented.
fn legend_and_present<'b, DB: DrawingBackend + 'b>(
    chart: &mut Chart2d<'b, DB>,
    root: &DrawingArea<DB, Shift>,
    position: SeriesLabelPosition,
    err: &dyn Fn(String) -> ReportError,
) -> Result<(), ReportError> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font(("sans-serif", 11))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .draw()
        .map_err(|e| err(format!("{e:?}")))?;
    root.present().map_err(|e| err(format!("{e:?}")))
}

fn data_range(lines: &[Line]) -> ((f64, f64), (f64, f64)) {
    let Some(((x0, mut x1), (mut y0, mut y1))) = extent(lines.iter().flat_map(|l| l.points.iter()))
    else {
        return ((0.0, 1.0), (0.0, 1.0));
    };
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        let pad = y0.abs().max(1e-12) * 0.01;
        y0 -= pad;
        y1 += pad;
    }
    let pad = (y1 - y0) * 0.06;
    ((x0, x1), (y0 - pad, y1 + pad))
}

fn svg_string(out: String) -> String {
    let body = match out.strip_prefix("<?xml") {
        Some(rest) => rest
            .split_once("?>")
            .map_or(out.as_str(), |(_, r)| r.trim_start()),
        None => out.as_str(),
    };
    format!("{body}\n")
}

fn line_chart<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    lines: &[Line],
    range: Option<((f64, f64), (f64, f64))>,
    legend: SeriesLabelPosition,
) -> Result<(), ReportError> {
    let err = draw_err(title);
    let ((x0, x1), (y0, y1)) = range.unwrap_or_else(|| data_range(lines));
    let mut chart = new_chart(&root, title, 62, (x0, x1), (y0, y1), &err)?;
    let yf = |y: &f64| {
        if (y1 - y0) < 1e-2 {
            format!("{y:.1e}")
        } else {
            format!("{y:.2}")
        }
    };
    let xf = |x: &f64| {
        if x1 - x0 > 5.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    };
    house_style(&mut chart.configure_mesh())
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .x_labels(6)
        .y_labels(6)
        .draw()
        .map_err(|e| err(format!("{e:?}")))?;
    for l in lines {
        let style = ShapeStyle {
            color: l.color.to_rgba(),
            filled: false,
            stroke_width: 2,
        };
        let color = l.color;
        let series = if l.dashed {
            chart
                .draw_series(DashedLineSeries::new(l.points.clone(), 6, 4, style))
                .map_err(|e| err(format!("{e:?}")))?
        } else {
            chart
                .draw_series(LineSeries::new(l.points.clone(), style))
                .map_err(|e| err(format!("{e:?}")))?
        };
        series.label(l.label.as_str()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
        });
        if l.markers && l.points.len() <= 60 {
            chart
                .draw_series(l.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| err(format!("{e:?}")))?;
        }
    }
    legend_and_present(&mut chart, &root, legend, &err)
}

/// Two histograms over [0, 1] in [`RELIABILITY_BINS`] bins, side by side within each bin, counts on a log
/// scale (log10(1 + count)).
fn histogram<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    original: &[u64],
    calibrated: &[u64],
) -> Result<(), ReportError> {
    let err = draw_err(title);
    let lg = |c: u64| (1.0 + c as f64).log10();
    let top = original
        .iter()
        .chain(calibrated)
        .map(|&c| lg(c))
        .fold(1.0f64, f64::max)
        * 1.08;
    let mut chart = new_chart(&root, title, 52, (0.0, 1.0f64), (0.0, top), &err)?;
    // Ticks at whole powers of ten of 1 + count.
    let yf = |y: &f64| {
        let k = y.round();
        if (y - k).abs() > 1e-6 {
            String::new()
        } else if k < 4.0 {
            format!("{}", 10f64.powf(k) as u64)
        } else {
            format!("1e{k}")
        }
    };
    house_style(&mut chart.configure_mesh())
        .x_desc("probability of the class")
        .y_desc("1 + positions")
        .y_label_formatter(&yf)
        .x_labels(6)
        .y_labels(6)
        .draw()
        .map_err(|e| err(format!("{e:?}")))?;
    let w = 1.0 / RELIABILITY_BINS as f64;
    for (k, (counts, color)) in [(original, ORIGINAL), (calibrated, CALIBRATED)]
        .into_iter()
        .enumerate()
    {
        let bars = counts.iter().enumerate().map(move |(b, &c)| {
            let x = b as f64 * w + k as f64 * w / 2.0;
            Rectangle::new([(x, 0.0), (x + w / 2.0, lg(c))], color.mix(0.8).filled())
        });
        bar_series(
            &mut chart,
            bars,
            if k == 0 { "original" } else { "calibrated" },
            color.mix(0.8),
            &err,
        )?;
    }
    legend_and_present(&mut chart, &root, SeriesLabelPosition::UpperMiddle, &err)
}

/// Brier score per class, original beside calibrated.
fn brier_chart<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    original: &[f64; 3],
    calibrated: &[f64; 3],
) -> Result<(), ReportError> {
    let title = "Brier score per class";
    let err = draw_err(title);
    let top = original
        .iter()
        .chain(calibrated)
        .fold(0.0f64, |a, &b| a.max(b))
        .max(1e-12)
        * 1.15;
    let mut chart = new_chart(&root, title, 62, (-0.5, 2.5f64), (0.0, top), &err)?;
    let xf = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && (0.0..=2.0).contains(&i) {
            CLASS_NAMES[i as usize].to_string()
        } else {
            String::new()
        }
    };
    let yf = |y: &f64| format!("{y:.1e}");
    house_style(&mut chart.configure_mesh())
        .disable_x_mesh()
        .x_labels(7)
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .y_desc("Brier score")
        .draw()
        .map_err(|e| err(format!("{e:?}")))?;
    for (k, (values, color, label)) in [
        (original, ORIGINAL, "original"),
        (calibrated, CALIBRATED, "calibrated"),
    ]
    .into_iter()
    .enumerate()
    {
        let bars = values.iter().enumerate().map(move |(i, &v)| {
            let x = i as f64 - 0.35 + k as f64 * 0.35;
            Rectangle::new([(x, 0.0), (x + 0.35, v)], color.mix(0.85).filled())
        });
        bar_series(&mut chart, bars, label, color.mix(0.85), &err)?;
    }
    legend_and_present(&mut chart, &root, SeriesLabelPosition::UpperRight, &err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_map_is_upstreams_grid() {
        // T = 1 leaves every point where it is (up to the 1e-8 clip at the corners).
        let map = calibration_map(&[1.0, 1.0, 1.0]);
        // 20 × 20 grid, points with p0 + p1 <= 1: 210 (the diagonal included, as numpy's float test).
        assert!((200..=210).contains(&map.len()), "{}", map.len());
        for (p, q) in &map {
            for c in 0..3 {
                assert!((p[c] - q[c]).abs() < 1e-6, "{p:?} -> {q:?}");
            }
        }
        // A larger acceptor temperature brings log p_acc towards 0: a confident acceptor point gains.
        let hot = calibration_map(&[1.0, 2.0, 1.0]);
        let (p, q) = hot.iter().find(|(p, _)| p[1] > 0.8 && p[0] > 0.05).unwrap();
        assert!(q[1] > p[1], "{p:?} -> {q:?}");
        assert_eq!(argmax(&[0.2, 0.4, 0.4]), 1);
    }
}
