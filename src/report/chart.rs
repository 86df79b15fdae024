//! The charts of a report, drawn with plotters: one [`ChartSpec`] (series of points, styles, axes) per
//! [`ChartKind`], rendered to SVG (inline in the HTML, or a file) or PNG.
//!
//! Styles: one colour per run; the split by the line (validation solid, test dashed, train dotted); the
//! pretrained model's zero-shot scores as thin black horizontal lines (drawn once when several runs share
//! them). Every epoch's value is also a mark (`<circle>` in SVG) whose shape tells the split, so that runs
//! of one epoch (no line, marks only) still read: validation a filled dot, test an open ring, train a small
//! dot. Epochs are numbered as the console numbers them (from 1; epoch N saves `models/model_{N-1}.pt`).
//! AUPRC charts carry the chance line: the fraction of positions that are true sites, the AUPRC of a
//! guess. The legend sits right of the plot.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::load::{Record, RunData};
use super::ReportError;

/// DejaVu Sans (Bitstream Vera licence, `assets/fonts/DejaVuSans-LICENSE.txt`), registered as `sans-serif`
/// so that PNGs render and SVG text is measured without system fonts.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Chart size in pixels: the plot, then the legend to its right.
const PLOT_W: u32 = 620;
const LEGEND_W: u32 = 300;
const HEIGHT: u32 = 400;

/// One run's colour (Tableau 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The charts of a report, in page order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    /// Loss per epoch, train/validation/test (log scale).
    Loss,
    /// Acceptor AUPRC per epoch, validation and test.
    AcceptorAuprc,
    /// Donor AUPRC per epoch.
    DonorAuprc,
    /// Acceptor top-1 accuracy per epoch.
    AcceptorTop1,
    /// Donor top-1 accuracy per epoch.
    DonorTop1,
    /// Learning rate per training batch (log scale).
    LearningRate,
}

impl ChartKind {
    /// Every chart, in page order.
    pub const ALL: [ChartKind; 6] = [
        ChartKind::Loss,
        ChartKind::AcceptorAuprc,
        ChartKind::DonorAuprc,
        ChartKind::AcceptorTop1,
        ChartKind::DonorTop1,
        ChartKind::LearningRate,
    ];

    /// File-name part (`report-loss.svg`).
    pub fn slug(self) -> &'static str {
        match self {
            ChartKind::Loss => "loss",
            ChartKind::AcceptorAuprc => "acceptor-auprc",
            ChartKind::DonorAuprc => "donor-auprc",
            ChartKind::AcceptorTop1 => "acceptor-top1",
            ChartKind::DonorTop1 => "donor-top1",
            ChartKind::LearningRate => "learning-rate",
        }
    }

    /// The chart's caption.
    pub fn title(self) -> &'static str {
        match self {
            ChartKind::Loss => "Loss per epoch (log scale)",
            ChartKind::AcceptorAuprc => "Acceptor AUPRC per epoch",
            ChartKind::DonorAuprc => "Donor AUPRC per epoch",
            ChartKind::AcceptorTop1 => "Acceptor top-1 accuracy per epoch",
            ChartKind::DonorTop1 => "Donor top-1 accuracy per epoch",
            ChartKind::LearningRate => "Learning rate per training batch (log scale)",
        }
    }
}

/// File format of a chart written on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChartFormat {
    /// Raster image.
    Png,
    /// Vector image.
    Svg,
}

impl ChartFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            ChartFormat::Png => "png",
            ChartFormat::Svg => "svg",
        }
    }
}

/// How a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dash {
    /// Continuous.
    Solid,
    /// Long dashes.
    Dashed,
    /// Dots.
    Dotted,
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Colour.
    pub color: RGBColor,
    /// Line style.
    pub dash: Dash,
    /// Line width.
    pub width: u32,
    /// Points (x, y) in data units (y already log10 on a log chart).
    pub points: Vec<(f64, f64)>,
    /// A mark on every point.
    pub markers: bool,
    /// The mark's shape.
    pub marker: Marker,
}

/// The mark on each point of a series (every one a `<circle>` in SVG).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Filled, radius 3 (validation).
    Dot,
    /// Open, radius 5 (test).
    Ring,
    /// Filled, radius 2 (train).
    Small,
}

impl Marker {
    /// The legend's sample of the mark (a glyph, so the SVG's circles stay one per point).
    fn glyph(self) -> &'static str {
        match self {
            Marker::Dot => "●",
            Marker::Ring => "○",
            Marker::Small => "•",
        }
    }
}

/// One legend row: a line sample and its text.
#[derive(Debug, Clone)]
pub struct LegendEntry {
    /// Colour of the sample.
    pub color: RGBColor,
    /// Style of the sample.
    pub dash: Dash,
    /// Text.
    pub text: String,
    /// The mark drawn before the text, if any.
    pub marker: Option<Marker>,
}

/// Everything needed to draw one chart.
#[derive(Debug, Clone)]
pub struct ChartSpec {
    /// Which chart.
    pub kind: ChartKind,
    /// x axis description.
    pub x_desc: String,
    /// y axis description.
    pub y_desc: String,
    /// y values are log10 of the data (labels show the data).
    pub log_y: bool,
    /// x counts epochs (labels only at whole numbers).
    pub integer_x: bool,
    /// The lines.
    pub series: Vec<Series>,
    /// The legend rows.
    pub legend: Vec<LegendEntry>,
}

impl ChartSpec {
    /// Total points of the series drawn with markers (the `<circle>`s of the SVG).
    pub fn marker_count(&self) -> usize {
        self.series
            .iter()
            .filter(|s| s.markers)
            .map(|s| s.points.len())
            .sum()
    }
}

/// The colour of run `i`.
pub fn run_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A metric of a record.
fn value(kind: ChartKind, r: &Record) -> Option<f64> {
    match kind {
        ChartKind::Loss => r.loss,
        ChartKind::AcceptorAuprc => r.acceptor.auprc,
        ChartKind::DonorAuprc => r.donor.auprc,
        ChartKind::AcceptorTop1 => r.acceptor.topk,
        ChartKind::DonorTop1 => r.donor.topk,
        ChartKind::LearningRate => r.lr,
    }
}

/// y in chart units: log10 on log charts (non-positive values are dropped there).
fn chart_y(log_y: bool, v: f64) -> Option<f64> {
    match (log_y, v.is_finite()) {
        (_, false) => None,
        (true, _) if v <= 0.0 => None,
        (true, _) => Some(v.log10()),
        (false, _) => Some(v),
    }
}

/// Builds the spec of one chart from the runs.
pub fn spec(kind: ChartKind, runs: &[RunData]) -> ChartSpec {
    if kind == ChartKind::LearningRate {
        return lr_spec(runs);
    }
    let log_y = kind == ChartKind::Loss;
    let splits: &[(&str, Dash, Marker)] = if kind == ChartKind::Loss {
        &[
            ("train", Dash::Dotted, Marker::Small),
            ("val", Dash::Solid, Marker::Dot),
            ("test", Dash::Dashed, Marker::Ring),
        ]
    } else {
        &[
            ("val", Dash::Solid, Marker::Dot),
            ("test", Dash::Dashed, Marker::Ring),
        ]
    };
    let mut series = Vec::new();
    let mut legend = run_legend(runs);
    for (i, run) in runs.iter().enumerate() {
        for &(split, dash, marker) in splits {
            let points: Vec<(f64, f64)> = run
                .split(split)
                .iter()
                .filter_map(|r| Some((r.epoch as f64 + 1.0, chart_y(log_y, value(kind, r)?)?)))
                .collect();
            if !points.is_empty() {
                series.push(Series {
                    color: run_color(i),
                    dash,
                    width: 2,
                    points,
                    markers: true,
                    marker,
                });
            }
        }
    }
    let max_epoch = runs
        .iter()
        .flat_map(|r| r.records.iter().map(|x| x.epoch))
        .max()
        .unwrap_or(0)
        .max(0) as f64
        + 1.0;
    let zero_shot = zero_shot_series(kind, runs, log_y, max_epoch);
    let black = RGBColor(0, 0, 0);
    for &(split, dash, marker) in splits {
        let name = match split {
            "val" => "validation set",
            "test" => "test set",
            _ => "training set",
        };
        legend.push(LegendEntry {
            color: RGBColor(90, 90, 90),
            dash,
            text: name.into(),
            marker: Some(marker),
        });
    }
    if !zero_shot.is_empty() {
        for (split, dash) in [("validation", Dash::Solid), ("test", Dash::Dashed)] {
            legend.push(LegendEntry {
                color: black,
                dash,
                text: format!("zero-shot {split} (pretrained)"),
                marker: None,
            });
        }
    }
    series.extend(zero_shot);
    if let Some(acceptor) = match kind {
        ChartKind::AcceptorAuprc => Some(true),
        ChartKind::DonorAuprc => Some(false),
        _ => None,
    } {
        for (fraction, series_) in chance_series(runs, acceptor, max_epoch) {
            legend.push(LegendEntry {
                color: CHANCE,
                dash: Dash::Dotted,
                text: format!("chance: {} sites/position", sig3(fraction)),
                marker: None,
            });
            series.push(series_);
        }
    }
    let metric = match kind {
        ChartKind::Loss => "loss",
        ChartKind::AcceptorAuprc | ChartKind::DonorAuprc => "AUPRC",
        _ => "top-1 accuracy",
    };
    ChartSpec {
        kind,
        x_desc: X_DESC.into(),
        y_desc: metric.into(),
        log_y,
        integer_x: true,
        series,
        legend,
    }
}

/// The x axis of the per-epoch charts.
pub const X_DESC: &str = "epoch (as the console counts: epoch 1 saves models/model_0.pt)";

/// The chance line's colour.
const CHANCE: RGBColor = RGBColor(120, 120, 120);

/// Three significant digits (`0.00123`).
fn sig3(v: f64) -> String {
    if v <= 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (2 - v.log10().floor() as i64).max(0) as usize;
    format!("{v:.digits$}")
}

/// The chance lines of an AUPRC chart: the test set's fraction of true sites (the AUPRC of a guess), one
/// line per distinct fraction (runs on the same test data share it), from the last test record of each
/// run that has the counts (`metrics.jsonl` of older versions lacks them: no line).
fn chance_series(runs: &[RunData], acceptor: bool, max_epoch: f64) -> Vec<(f64, Series)> {
    let mut out: Vec<(f64, Series)> = Vec::new();
    for run in runs {
        let Some(f) = run
            .split("test")
            .last()
            .and_then(|r| r.positive_fraction(acceptor))
        else {
            continue;
        };
        if out.iter().any(|(g, _)| sig3(*g) == sig3(f)) {
            continue;
        }
        out.push((
            f,
            Series {
                color: CHANCE,
                dash: Dash::Dotted,
                width: 2,
                points: vec![(0.7, f), (max_epoch + 0.3, f)],
                markers: false,
                marker: Marker::Dot,
            },
        ));
    }
    out
}

/// The zero-shot horizontal lines: validation solid, test dashed, thin black, once per pretrained model and
/// data ([`RunData::zero_shot_key`]).
fn zero_shot_series(kind: ChartKind, runs: &[RunData], log_y: bool, max_epoch: f64) -> Vec<Series> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for run in runs {
        let Some(key) = run.zero_shot_key() else {
            continue;
        };
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        for (split, dash) in [("val", Dash::Solid), ("test", Dash::Dashed)] {
            let Some(y) = run
                .zero_shot(split)
                .and_then(|r| value(kind, r))
                .and_then(|v| chart_y(log_y, v))
            else {
                continue;
            };
            out.push(Series {
                color: RGBColor(0, 0, 0),
                dash,
                width: 1,
                points: vec![(0.7, y), (max_epoch + 0.3, y)],
                markers: false,
                marker: Marker::Dot,
            });
        }
    }
    out
}

/// One legend entry per run: its colour and its label.
fn run_legend(runs: &[RunData]) -> Vec<LegendEntry> {
    (0..runs.len())
        .map(|i| LegendEntry {
            color: run_color(i),
            dash: Dash::Solid,
            text: runs[i].label.clone(),
            marker: None,
        })
        .collect()
}

fn lr_spec(runs: &[RunData]) -> ChartSpec {
    let mut series = Vec::new();
    let legend = run_legend(runs);
    for (i, run) in runs.iter().enumerate() {
        let points: Vec<(f64, f64)> = run
            .lr_per_batch
            .iter()
            .enumerate()
            .filter_map(|(b, &lr)| Some(((b + 1) as f64, chart_y(true, lr)?)))
            .collect();
        if !points.is_empty() {
            series.push(Series {
                color: run_color(i),
                dash: Dash::Solid,
                width: 2,
                points,
                markers: false,
                marker: Marker::Dot,
            });
        }
    }
    ChartSpec {
        kind: ChartKind::LearningRate,
        x_desc: "training batch".into(),
        y_desc: "learning rate".into(),
        log_y: true,
        integer_x: false,
        series,
        legend,
    }
}

/// The smallest and largest x and y of `points`, `None` when there are none.
pub(crate) fn extent<'a>(
    points: impl Iterator<Item = &'a (f64, f64)>,
) -> Option<((f64, f64), (f64, f64))> {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    (x0 <= x1).then_some(((x0, x1), (y0, y1)))
}

/// The data range of the chart, padded; log charts and metric charts get a sensible minimum span.
fn ranges(spec: &ChartSpec) -> ((f64, f64), (f64, f64)) {
    let Some(((mut x0, mut x1), (mut y0, mut y1))) =
        extent(spec.series.iter().flat_map(|s| s.points.iter()))
    else {
        return ((0.0, 1.0), (0.0, 1.0));
    };
    if spec.integer_x {
        x0 = x0.min(0.7);
        x1 = x1.max(1.3);
    } else if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let min_span = if spec.log_y { 0.5 } else { 0.02 };
    if y1 - y0 < min_span {
        let mid = (y0 + y1) / 2.0;
        y0 = mid - min_span / 2.0;
        y1 = mid + min_span / 2.0;
    }
    let pad = (y1 - y0) * 0.06;
    ((x0, x1), (y0 - pad, y1 + pad))
}

/// `6.3e-4`.
fn sci(v: f64) -> String {
    format!("{v:.1e}")
}

fn draw_err<E: std::fmt::Debug>(kind: ChartKind) -> impl Fn(E) -> ReportError {
    move |e| ReportError::Draw {
        chart: kind.title().into(),
        message: format!("{e:?}"),
    }
}

pub(crate) fn register_font() {
    REGISTER.call_once(|| {
        // The bytes are a valid TrueType font (checked by the tests); nothing to report otherwise.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draws a chart on any plotters backend.
fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    spec: &ChartSpec,
) -> Result<(), ReportError>
where
    DB::ErrorType: 'static,
{
    let err = draw_err(spec.kind);
    root.fill(&WHITE).map_err(&err)?;
    let (plot, legend) = root.split_horizontally(PLOT_W);
    let ((x0, x1), (y0, y1)) = ranges(spec);
    let mut chart = ChartBuilder::on(&plot)
        .caption(spec.kind.title(), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(&err)?;
    let log_y = spec.log_y;
    let integer_x = spec.integer_x;
    let xf = move |x: &f64| {
        if !integer_x {
            format!("{x:.0}")
        } else if (x - x.round()).abs() < 1e-6 && *x >= 0.0 {
            format!("{}", x.round() as i64)
        } else {
            String::new()
        }
    };
    let yf = move |y: &f64| {
        if log_y {
            sci(10f64.powf(*y))
        } else {
            format!("{y:.3}")
        }
    };
    chart
        .configure_mesh()
        .x_desc(spec.x_desc.as_str())
        .y_desc(spec.y_desc.as_str())
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .x_labels(if integer_x {
            ((x1 - x0) as usize + 2).min(14)
        } else {
            8
        })
        .y_labels(8)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .light_line_style(RGBColor(242, 242, 242))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(&err)?;
    for s in &spec.series {
        let style = ShapeStyle {
            color: s.color.to_rgba(),
            filled: false,
            stroke_width: s.width,
        };
        let pts = s.points.clone();
        match s.dash {
            Dash::Solid => chart.draw_series(LineSeries::new(pts, style)).map(|_| ()),
            Dash::Dashed => chart
                .draw_series(DashedLineSeries::new(pts, 7, 5, style))
                .map(|_| ()),
            Dash::Dotted => chart
                .draw_series(DashedLineSeries::new(pts, 2, 4, style))
                .map(|_| ()),
        }
        .map_err(&err)?;
        if s.markers {
            let (radius, style) = match s.marker {
                Marker::Dot => (3, s.color.filled()),
                Marker::Ring => (5, s.color.stroke_width(2)),
                Marker::Small => (2, s.color.filled()),
            };
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, radius, style)))
                .map_err(&err)?;
        }
    }
    draw_legend(&legend, &spec.legend).map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// The legend: a line sample and a text per row, top-aligned right of the plot.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    rows: &[LegendEntry],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut y = 48;
    for row in rows {
        let style = ShapeStyle {
            color: row.color.to_rgba(),
            filled: false,
            stroke_width: 2,
        };
        let line = vec![(8, y), (40, y)];
        match row.dash {
            Dash::Solid => area.draw(&PathElement::new(line, style))?,
            Dash::Dashed => area.draw(&DashedPathElement::new(line, 7, 5, style))?,
            Dash::Dotted => area.draw(&DashedPathElement::new(line, 2, 4, style))?,
        }
        if let Some(m) = row.marker {
            area.draw(&Text::new(
                m.glyph(),
                (19, y - 10),
                ("sans-serif", 16).into_font().color(&row.color),
            ))?;
        }
        let mut text = row.text.clone();
        if text.chars().count() > 36 {
            text = text.chars().take(35).collect::<String>() + "…";
        }
        area.draw(&Text::new(
            text,
            (48, y - 8),
            ("sans-serif", 13).into_font().color(&BLACK),
        ))?;
        y += 22;
    }
    Ok(())
}

/// The chart as an SVG document.
pub fn render_svg(spec: &ChartSpec) -> Result<String, ReportError> {
    register_font();
    let mut out = String::new();
    {
        let root =
            SVGBackend::with_string(&mut out, (PLOT_W + LEGEND_W, HEIGHT)).into_drawing_area();
        draw(root, spec)?;
    }
    Ok(out)
}

/// The chart as a PNG file's bytes (same size as the SVG).
pub fn render_png(spec: &ChartSpec) -> Result<Vec<u8>, ReportError> {
    register_font();
    let dir = tempdir_png()?;
    let path = dir.join(format!("{}.png", spec.kind.slug()));
    {
        let root = BitMapBackend::new(&path, (PLOT_W + LEGEND_W, HEIGHT)).into_drawing_area();
        draw(root, spec)?;
    }
    let bytes = std::fs::read(&path).map_err(|source| ReportError::Read {
        path: path.clone(),
        source,
    })?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(bytes)
}

/// A private scratch directory for plotters' PNG encoder (which writes to a path).
pub(crate) fn tempdir_png() -> Result<std::path::PathBuf, ReportError> {
    let dir = std::env::temp_dir().join(format!(
        "openspliceai-rs-report-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).map_err(|source| ReportError::Read {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

/// One chart in the requested file format.
pub fn render_file(
    kind: ChartKind,
    runs: &[RunData],
    format: ChartFormat,
) -> Result<Vec<u8>, ReportError> {
    let s = spec(kind, runs);
    match format {
        ChartFormat::Svg => render_svg(&s).map(String::into_bytes),
        ChartFormat::Png => render_png(&s),
    }
}
