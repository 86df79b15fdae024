//! The self-contained HTML page: runs, best epochs beside the zero-shot baseline, and the charts as inline
//! SVG (no scripts, no external references).

use super::chart::{self, ChartKind};
use super::load::{Record, RunData};
use super::ReportError;

const STYLE: &str = "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1000px}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse;font-size:13px}\
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td.l,th.l{text-align:left}td{white-space:nowrap}td.w{white-space:normal}\
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
    h.push_str(&runs_table(runs));
    h.push_str(&best_table(runs));
    h.push_str(
        "<h2>Curves</h2>\n<p class=\"note\">One colour per run; validation solid, test dashed, \
train dotted; the pretrained model's zero-shot scores (before any training) as thin black lines. \
A dot per epoch.</p>\n",
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
        "<h2>Runs</h2>\n<table>\n<tr><th class=\"l\">run</th><th class=\"l\">directory</th>\
<th>epochs</th><th class=\"l\">settings</th></tr>\n",
    );
    for (i, r) in runs.iter().enumerate() {
        let c = chart::run_color(i);
        let settings = match &r.info {
            Some(info) => format!(
                "{}nt, {}, {}, batch {}, lr {}, seed {}, {}",
                info.flanking_size,
                info.scheduler,
                info.loss,
                info.batch_size,
                info.learning_rate,
                info.random_seed,
                info.device
            ),
            None => "(no run.json)".into(),
        };
        h.push_str(&format!(
            "<tr><td class=\"l n\"><span style=\"color:rgb({},{},{})\">&#9632;</span> {}</td><td class=\"l w\"><code>{}</code></td><td>{}</td><td class=\"l w\">{}</td></tr>\n",
            c.0,
            c.1,
            c.2,
            escape(&r.label),
            escape(&r.dir.display().to_string()),
            r.split("val").len(),
            escape(&settings)
        ));
    }
    h.push_str("</table>\n");
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
        "<h2>Best epoch per run</h2>\n<p class=\"note\">Best epoch: lowest validation loss (the epoch of \
<code>models/model_best.pt</code>). Scores on the test set; zero-shot: the pretrained model before \
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
                    "zero-shot: {}",
                    p.file_name()
                        .map_or(String::new(), |f| f.to_string_lossy().into_owned())
                ),
                None => format!("{} (zero-shot)", r.label),
            };
            h.push_str(&format!(
                "<tr><td class=\"l n\">{}</td><td>–</td><td>{}</td>{}<td>–</td></tr>\n",
                escape(&name),
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
            best.map_or("–".into(), |e| e.to_string()),
            val_loss,
            cells(best.and_then(|e| r.at("test", e))),
            vs_zero
        ));
    }
    h.push_str("</table>\n");
    h
}
