//! The self-contained HTML page: runs, best epochs beside the zero-shot baseline, and the charts as inline
//! SVG (no scripts, no external references).

use super::chart::{self, ChartKind};
use super::load::{Record, RunData};
use super::ReportError;

const STYLE: &str = "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1000px}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse;font-size:13px}\
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td.l,th.l{text-align:left}td{white-space:nowrap}td.w{white-space:normal}\
td.w code{overflow-wrap:anywhere}\
th{background:#f3f3f3}.chart svg{max-width:100%;height:auto;display:block;margin:12px 0}\
p.note{font-size:13px;color:#555}code{font-size:12px}";

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole page.
pub fn render(runs: &[RunData]) -> Result<String, ReportError> {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<title>openspliceai-rs training report</title>\n");
    h.push_str(&format!("<style>{STYLE}</style>\n</head>\n<body>\n"));
    h.push_str("<h1>openspliceai-rs training report</h1>\n");
    h.push_str(&format!(
        "<p class=\"note\">Written by openspliceai-rs {} on {}. Charts: {}.</p>\n",
        env!("CARGO_PKG_VERSION"),
        crate::rundir::run_info::utc_now(),
        ChartKind::ALL
            .iter()
            .filter(|k| !chart::spec(**k, runs).series.is_empty())
            .map(|k| format!("<a href=\"#{}\">{}</a>", k.slug(), escape(k.title())))
            .collect::<Vec<_>>()
            .join(" · ")
    ));
    h.push_str(&runs_table(runs));
    h.push_str(&best_table(runs));
    h.push_str(
        "<h2>Curves</h2>\n<p class=\"note\">One colour per run; validation solid, test dashed, \
train dotted; the pretrained model's zero-shot scores (before any training) as thin black lines; \
on AUPRC charts the grey dotted chance line (the test set's fraction of true sites: the AUPRC of a guess). \
A mark per epoch and split: validation a filled dot, test an open ring, train a small dot. Epochs \
are counted as on the console, from 1 (epoch 1 saves <code>models/model_0.pt</code>).</p>\n",
    );
    for kind in ChartKind::ALL {
        let spec = chart::spec(kind, runs);
        if spec.series.is_empty() {
            continue;
        }
        let svg = chart::render_svg(&spec)?;
        h.push_str(&format!(
            "<div class=\"chart\" id=\"{}\">\n{}\n</div>\n",
            kind.slug(),
            strip_xml_declaration(&svg)
        ));
    }
    h.push_str("</body>\n</html>\n");
    Ok(h)
}

fn strip_xml_declaration(svg: &str) -> &str {
    match svg.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or(svg, |(_, r)| r.trim_start()),
        None => svg,
    }
}

fn runs_table(runs: &[RunData]) -> String {
    let mut h = String::from(
        "<h2>Runs</h2>\n<table>\n<tr><th class=\"l\">run</th><th>epochs</th>\
<th class=\"l\">directory, settings, data, version, start and command line</th></tr>\n",
    );
    for (i, r) in runs.iter().enumerate() {
        let c = chart::run_color(i);
        let settings = match &r.info {
            Some(info) => run_details(info),
            None => "(no run.json)".into(),
        };
        h.push_str(&format!(
            "<tr><td class=\"l n\"><span style=\"color:rgb({},{},{})\">&#9632;</span> {}</td><td>{}</td><td class=\"l w\"><code>{}</code><br>{}</td></tr>\n",
            c.0,
            c.1,
            c.2,
            escape(&r.label),
            r.split("val").len(),
            escape(&r.dir.display().to_string()),
            settings
        ));
    }
    h.push_str("</table>\n");
    h
}

/// A run's settings, data, version, start and command line (HTML).
fn run_details(info: &crate::rundir::RunInfo) -> String {
    let windows = |n: Option<usize>| n.map_or(String::new(), |n| format!(" ({n} windows)"));
    let w = info.windows;
    let mut h = escape(&format!(
        "{}nt, {}, {}, batch {}, lr {}, seed {}, {}",
        info.flanking_size,
        info.scheduler,
        info.loss,
        info.batch_size,
        info.learning_rate,
        info.random_seed,
        info.device
    ));
    if let Some(p) = &info.pretrained_model {
        h.push_str(&format!(
            "<br>pretrained: <code>{}</code>",
            escape(&p.display().to_string())
        ));
    }
    h.push_str(&format!(
        "<br>train: <code>{}</code>{}",
        escape(&info.train_dataset.display().to_string()),
        windows(w.map(|w| w.train))
    ));
    match &info.validation_dataset {
        Some(v) => h.push_str(&format!(
            "<br>validation: <code>{}</code>{}",
            escape(&v.display().to_string()),
            windows(w.map(|w| w.validation))
        )),
        None => h.push_str(&format!(
            "<br>validation: carved out of the training file{}",
            windows(w.map(|w| w.validation))
        )),
    }
    h.push_str(&format!(
        "<br>test: <code>{}</code>{}",
        escape(&info.test_dataset.display().to_string()),
        windows(w.map(|w| w.test))
    ));
    let version = info
        .tool_version
        .as_deref()
        .unwrap_or("(version not recorded)");
    let started = info.started.as_deref().unwrap_or("(start not recorded)");
    h.push_str(&format!(
        "<br>openspliceai-rs {}, started {}",
        escape(version),
        escape(started)
    ));
    if !info.command_line.is_empty() {
        h.push_str(&format!(
            "<br><code>{}</code>",
            escape(&info.command_line.join(" "))
        ));
    }
    h
}

fn cells(r: Option<&Record>) -> String {
    let f = |v: Option<f64>, digits: usize| match v {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => "–".into(),
    };
    match r {
        Some(r) => format!(
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            r.loss.map_or("–".into(), |l| format!("{l:.3e}")),
            f(r.acceptor.topk, 3),
            f(r.acceptor.auprc, 3),
            f(r.donor.topk, 3),
            f(r.donor.auprc, 3)
        ),
        None => "<td>–</td>".repeat(5),
    }
}

fn best_table(runs: &[RunData]) -> String {
    let mut h = String::from(
        "<h2>Best epoch per run</h2>\n<p class=\"note\">Best epoch (counted from 1, as on the console): \
lowest validation loss (the epoch of <code>models/model_best.pt</code>). Scores on the test set; zero-shot: the pretrained model before \
training.</p>\n<table>\n<tr><th class=\"l\">run</th><th>epoch</th><th>validation loss</th>\
<th>test loss</th><th>acceptor top-1</th><th>acceptor AUPRC</th><th>donor top-1</th>\
<th>donor AUPRC</th><th>validation loss vs zero-shot</th></tr>\n",
    );
    let mut zero_shots_shown: Vec<String> = Vec::new();
    for r in runs {
        // Runs from the same pretrained model on the same data share one zero-shot row.
        let key = r.zero_shot_key().filter(|k| !zero_shots_shown.contains(k));
        if let (Some(key), Some(z)) = (key, r.zero_shot("test")) {
            zero_shots_shown.push(key);
            let name = match r.info.as_ref().and_then(|i| i.pretrained_model.as_ref()) {
                Some(p) => format!(
                    "{}<br><code>{}</code>",
                    escape(&format!(
                        "zero-shot: {}",
                        p.file_name()
                            .map_or(String::new(), |f| f.to_string_lossy().into_owned())
                    )),
                    escape(&p.display().to_string())
                ),
                None => escape(&format!("{} (zero-shot)", r.label)),
            };
            h.push_str(&format!(
                "<tr><td class=\"l w\">{}</td><td>–</td><td>{}</td>{}<td>–</td></tr>\n",
                name,
                r.zero_shot("val")
                    .and_then(|v| v.loss)
                    .map_or("–".into(), |l| format!("{l:.3e}")),
                cells(Some(z))
            ));
        }
        let best = r.best_epoch();
        let val_loss = best
            .and_then(|e| r.at("val", e))
            .and_then(|v| v.loss)
            .map_or("–".into(), |l| format!("{l:.3e}"));
        let vs_zero = match (
            best.and_then(|e| r.at("val", e)).and_then(|v| v.loss),
            r.zero_shot("val").and_then(|z| z.loss),
        ) {
            (Some(b), Some(z)) if z > 0.0 => {
                let pct = 100.0 * (b - z) / z;
                let verdict = if b < z {
                    "better"
                } else {
                    "worse: keep the pretrained model"
                };
                format!("{pct:+.1}% ({verdict})")
            }
            _ => "–".into(),
        };
        h.push_str(&format!(
            "<tr><td class=\"l n\">{}</td><td>{}</td><td>{}</td>{}<td class=\"l w\">{}</td></tr>\n",
            escape(&r.label),
            best.map_or("–".into(), |e| (e + 1).to_string()),
            val_loss,
            cells(best.and_then(|e| r.at("test", e))),
            vs_zero
        ));
    }
    h.push_str("</table>\n");
    h
}
