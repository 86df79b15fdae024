//! `calibration.html`: the calibration's numbers and pictures in one self-contained page, in `report`'s
//! style (inline SVG drawn with plotters in the embedded font, no scripts, no network): the temperature and
//! the fit, then per split the metrics before and after, a reliability diagram per class, the score
//! distributions of each class's own positions, and the Brier scores.

use plotters::prelude::*;

use super::metrics::{SplitMetrics, RELIABILITY_BINS};
use super::{CalibrateOptions, CalibrationSummary, SplitReport, CLASS_NAMES};
use crate::report::chart::register_font;
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

/// The whole page.
pub fn render(s: &CalibrationSummary, opts: &CalibrateOptions) -> Result<String, ReportError> {
    register_font();
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<title>openspliceai-rs calibration</title>\n");
    h.push_str(&format!("<style>{STYLE}</style>\n</head>\n<body>\n"));
    h.push_str("<h1>openspliceai-rs calibration</h1>\n");
    h.push_str(&format!(
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
    h.push_str(
        "<p class=\"note\">Calibrated probabilities are <code>softmax(logits / T)</code>, one T per class; \
the model's weights are unchanged. Use them with <code>--temperature temperature.txt</code> in \
<code>predict</code>, <code>variant</code> and <code>test</code>.</p>\n",
    );
    if let Some(f) = &s.fit {
        h.push_str("<h2>Fit</h2>\n<div class=\"row\">\n");
        let loss: Vec<(f64, f64)> = f
            .steps
            .iter()
            .enumerate()
            .map(|(i, st)| (i as f64 + 1.0, st.loss as f64))
            .collect();
        h.push_str(&line_chart(
            "Validation NLL per step",
            "step",
            "NLL",
            &[Line::new("NLL", ORIGINAL, loss)],
            None,
            SeriesLabelPosition::UpperRight,
        )?);
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
        h.push_str(&line_chart(
            "Temperature per step",
            "step",
            "T",
            &lines,
            None,
            SeriesLabelPosition::UpperLeft,
        )?);
        h.push_str("</div>\n");
    }
    for split in &s.splits {
        h.push_str(&split_section(split)?);
    }
    h.push_str("</body>\n</html>\n");
    Ok(h)
}

fn split_section(r: &SplitReport) -> Result<String, ReportError> {
    let mut h = format!(
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
    h.push_str(&metrics_table(&r.original, &r.calibrated));
    h.push_str(
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
        h.push_str(&line_chart(
            name,
            "predicted probability",
            "observed frequency",
            &[
                diagonal,
                Line::new("original", ORIGINAL, pts(&r.original)),
                Line::new("calibrated", CALIBRATED, pts(&r.calibrated)),
            ],
            Some(((0.0, 1.0), (0.0, 1.0))),
            SeriesLabelPosition::LowerRight,
        )?);
    }
    h.push_str(
        "</div>\n<h3>Score distributions</h3>\n<p class=\"note\">Each class's probability at the \
positions of that class, in 30 bins, before and after (1 + count on a log scale).</p>\n<div class=\"row\">\n",
    );
    for (c, name) in CLASS_NAMES.iter().enumerate() {
        h.push_str(&histogram(
            &format!("{name} positions"),
            &r.original.histograms[c],
            &r.calibrated.histograms[c],
        )?);
    }
    h.push_str("</div>\n<h3>Brier scores</h3>\n<div class=\"row\">\n");
    h.push_str(&brier_chart(&r.original.brier, &r.calibrated.brier)?);
    h.push_str("</div>\n");
    Ok(h)
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

fn data_range(lines: &[Line]) -> ((f64, f64), (f64, f64)) {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in lines.iter().flat_map(|l| l.points.iter()) {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return ((0.0, 1.0), (0.0, 1.0));
    }
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

fn line_chart(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[Line],
    range: Option<((f64, f64), (f64, f64))>,
    legend: SeriesLabelPosition,
) -> Result<String, ReportError> {
    let err = draw_err(title);
    let ((x0, x1), (y0, y1)) = range.unwrap_or_else(|| data_range(lines));
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(format!("{e:?}")))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 15))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(62)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| err(format!("{e:?}")))?;
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
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .x_labels(6)
            .y_labels(6)
            .label_style(("sans-serif", 11))
            .axis_desc_style(("sans-serif", 12))
            .light_line_style(RGBColor(242, 242, 242))
            .bold_line_style(RGBColor(215, 215, 215))
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
        chart
            .configure_series_labels()
            .position(legend)
            .label_font(("sans-serif", 11))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .draw()
            .map_err(|e| err(format!("{e:?}")))?;
        root.present().map_err(|e| err(format!("{e:?}")))?;
    }
    Ok(svg_string(out))
}

/// Two histograms over [0, 1] in [`RELIABILITY_BINS`] bins, side by side within each bin, counts on a log
/// scale (log10(1 + count)).
fn histogram(title: &str, original: &[u64], calibrated: &[u64]) -> Result<String, ReportError> {
    let err = draw_err(title);
    let lg = |c: u64| (1.0 + c as f64).log10();
    let top = original
        .iter()
        .chain(calibrated)
        .map(|&c| lg(c))
        .fold(1.0f64, f64::max)
        * 1.08;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(format!("{e:?}")))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 15))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(0.0..1.0f64, 0.0..top)
            .map_err(|e| err(format!("{e:?}")))?;
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
        chart
            .configure_mesh()
            .x_desc("probability of the class")
            .y_desc("1 + positions")
            .y_label_formatter(&yf)
            .x_labels(6)
            .y_labels(6)
            .label_style(("sans-serif", 11))
            .axis_desc_style(("sans-serif", 12))
            .light_line_style(RGBColor(242, 242, 242))
            .bold_line_style(RGBColor(215, 215, 215))
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
            chart
                .draw_series(bars)
                .map_err(|e| err(format!("{e:?}")))?
                .label(if k == 0 { "original" } else { "calibrated" })
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.mix(0.8).filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperMiddle)
            .label_font(("sans-serif", 11))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .draw()
            .map_err(|e| err(format!("{e:?}")))?;
        root.present().map_err(|e| err(format!("{e:?}")))?;
    }
    Ok(svg_string(out))
}

/// Brier score per class, original beside calibrated.
fn brier_chart(original: &[f64; 3], calibrated: &[f64; 3]) -> Result<String, ReportError> {
    let title = "Brier score per class";
    let err = draw_err(title);
    let top = original
        .iter()
        .chain(calibrated)
        .fold(0.0f64, |a, &b| a.max(b))
        .max(1e-12)
        * 1.15;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (W + 120, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(format!("{e:?}")))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 15))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(62)
            .build_cartesian_2d(-0.5..2.5f64, 0.0..top)
            .map_err(|e| err(format!("{e:?}")))?;
        let xf = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && (0.0..=2.0).contains(&i) {
                CLASS_NAMES[i as usize].to_string()
            } else {
                String::new()
            }
        };
        let yf = |y: &f64| format!("{y:.1e}");
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(7)
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .y_desc("Brier score")
            .label_style(("sans-serif", 11))
            .axis_desc_style(("sans-serif", 12))
            .light_line_style(RGBColor(242, 242, 242))
            .bold_line_style(RGBColor(215, 215, 215))
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
            chart
                .draw_series(bars)
                .map_err(|e| err(format!("{e:?}")))?
                .label(label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.mix(0.85).filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 11))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .draw()
            .map_err(|e| err(format!("{e:?}")))?;
        root.present().map_err(|e| err(format!("{e:?}")))?;
    }
    Ok(svg_string(out))
}
