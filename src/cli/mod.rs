//! The command line: parse, build the library's configuration, call the library, print.

pub mod args;
pub mod calibrate;
pub mod infer;
pub mod merge;

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};

use crate::checkpoint;
use crate::clobber::Io;
use crate::console::{Output, Reporter};
use crate::data::example::{write_example_data, ExampleOptions};
use crate::device::{describe, select_device, upload_rows};
use crate::model::config::IN_CHANNELS;
use crate::model::{FlankConfig, SpliceAi, Trainable, CONFIGS};
use crate::train::{self, RunConfig, RunKind, RunSummary, TestOptions};
pub use args::{normalize_args, Cli, Command};
use args::{
    BenchArgs, CommonTrainArgs, ComputeArgs, ConvertArgs, CreateDataArgs, ExampleDataArgs,
    ForwardArgs, InspectArgs, QuickstartArgs, ReportArgs, TestArgs, TrainArgs, TransferArgs,
};

/// Runs one parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::CreateData(a) => a.progress.apply(),
        Command::Train(a) => a.common.progress.apply(),
        Command::Transfer(a) => a.common.progress.apply(),
        Command::Test(a) => a.progress.apply(),
        Command::Predict(a) => a.progress.apply(),
        Command::Variant(a) => a.progress.apply(),
        Command::Calibrate(a) => a.progress.apply(),
        _ => {}
    }
    if crate::ops::path::ops_path()? == crate::ops::path::OpsPath::Reference {
        log::info!("OSAI_OPS=reference: the CPU runs the graph CUDA runs");
    }
    match cli.command {
        Command::Transfer(a) => transfer(a).map(|_| ()),
        Command::Train(a) => train_cmd(a).map(|_| ()),
        Command::Test(a) => test_cmd(a),
        Command::Quickstart(a) => quickstart(a),
        Command::ExampleData(a) => example_data(a),
        Command::Inspect(a) => inspect(a),
        Command::Convert(a) => convert(a),
        Command::Forward(a) => forward(a),
        Command::Bench(a) => bench(a),
        Command::CreateData(a) => create_data(a),
        Command::Predict(a) => infer::predict(a),
        Command::Variant(a) => infer::variant(a),
        Command::Merge(a) => merge::run(a),
        Command::Report(a) => report(a),
        Command::Calibrate(a) => calibrate::run(a),
    }
}

/// The terminal: where the library's console text is printed (stdout), the one [`Reporter`] of the program.
struct Terminal;

impl Reporter for Terminal {
    fn write(&self, text: &str) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        // A closed stdout (`| head`) must not fail the run: the LOG/ files and checkpoints are the output.
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }
}

fn terminal() -> Output {
    Output::new(Terminal)
}

fn run_config(
    c: &CommonTrainArgs,
    flank: &'static FlankConfig,
    kind: RunKind,
    no_cache: bool,
    keep_cache: bool,
    cache_dir: Option<std::path::PathBuf>,
) -> Result<RunConfig> {
    let device = select_device(&c.compute.device)?;
    c.precision.select(&device)?;
    let cfg = RunConfig {
        out: terminal(),
        kind,
        train_dataset: c.train_dataset.clone(),
        test_dataset: c.test_dataset.clone(),
        validation_dataset: c.validation_dataset.clone(),
        flank,
        epochs: c.epochs,
        scheduler: c.scheduler,
        early_stopping: c.early_stopping,
        patience: c.patience,
        output_dir: c.output_dir.clone(),
        project_name: c.project_name.clone(),
        exp_num: c.exp_num.clone(),
        random_seed: c.random_seed,
        loss: c.loss,
        batch_size: c.compute.batch(flank),
        device,
        overwrite: c.overwrite,
        resume: c.resume,
        progress: !c.quiet,
        no_cache,
        keep_cache,
        cache_dir,
        console: c.console,
        report: !c.no_report,
    };
    let pretrained = match &cfg.kind {
        RunKind::Transfer { pretrained, .. } => Some(pretrained),
        RunKind::Train => None,
    };
    Io::new()
        .input("--train-dataset", &cfg.train_dataset)
        .input("--test-dataset", &cfg.test_dataset)
        .input_opt("--validation-dataset", cfg.validation_dataset.as_ref())
        .input_opt("--pretrained-model", pretrained)
        .output_dir("--output-dir", cfg.run_dir(), crate::rundir::RUN_OUTPUTS)
        .check()?;
    Ok(cfg)
}

fn finish(summary: RunSummary, cfg: &RunConfig) -> RunSummary {
    println!("{}", summary.render());
    if cfg.report {
        let path = summary.run_dir.join(crate::rundir::REPORT_HTML);
        // The run's checkpoints and logs are written; a chart that cannot be drawn must not fail it.
        match write_html_report(std::slice::from_ref(&summary.run_dir), &path) {
            Ok(()) => println!("  training curves: {}", path.display()),
            Err(e) => log::warn!("could not write {}: {e:#}", path.display()),
        }
    }
    summary
}

/// `report` of `run_dirs` into `output` (HTML only).
fn write_html_report(run_dirs: &[std::path::PathBuf], output: &Path) -> Result<()> {
    crate::report::write_report(
        run_dirs,
        &crate::report::ReportOptions {
            output: output.to_path_buf(),
            chart_format: None,
        },
    )?;
    Ok(())
}

fn transfer(a: TransferArgs) -> Result<RunSummary> {
    let trainable = if a.unfreeze_all {
        Trainable::All
    } else if a.unfreeze < 1 {
        bail!(
            "--unfreeze must be at least 1 (got {}); use --unfreeze-all to train every layer",
            a.unfreeze
        );
    } else {
        Trainable::LastUnits(a.unfreeze as usize)
    };
    if !a.pretrained_model.exists() {
        bail!(
            "--pretrained-model {}: no such file",
            a.pretrained_model.display()
        );
    }
    println!("Running openspliceai-rs in transfer mode.");
    let requested = a.common.flanking_size;
    // The run directory is named by the flanking size, which the checkpoint may decide: the checkpoint is
    // checked against every directory it could be.
    for f in flanks_or_all(requested) {
        let c = &a.common;
        let dir = crate::rundir::upstream_run_dir(
            &c.output_dir,
            &c.project_name,
            f.flank,
            &c.exp_num,
            c.random_seed,
        );
        // --cache-dir's file, named as RunConfig::prefix_cache_path names it.
        let cache = a.cache_dir.as_ref().map(|d| {
            d.join(format!(
                "{}-{}.{}",
                dir.parent()
                    .and_then(|p| p.file_name())
                    .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
                c.exp_num,
                crate::rundir::PREFIX_CACHE
            ))
        });
        Io::new()
            .input("--pretrained-model", &a.pretrained_model)
            .output_dir("--output-dir", dir, crate::rundir::RUN_OUTPUTS)
            .output_opt("--cache-dir", cache)
            .check()?;
    }
    // The checkpoint door, before the run directory exists: a refused checkpoint leaves nothing behind.
    let flank = if a.partial_load {
        let sd = checkpoint::load(&a.pretrained_model)?;
        match requested.or_else(|| FlankConfig::for_unit_count(crate::model::io::unit_count(&sd))) {
            Some(f) => f,
            None => bail!(
                "{}: cannot tell the flanking size from the checkpoint; give -f",
                a.pretrained_model.display()
            ),
        }
    } else {
        crate::infer::checkpoint_config(&a.pretrained_model, requested)?
    };
    say_flank(requested, flank, &a.pretrained_model, |l| println!("{l}"));
    let cfg = run_config(
        &a.common,
        flank,
        RunKind::Transfer {
            pretrained: a.pretrained_model.clone(),
            trainable,
            freeze_bn: a.freeze_bn,
            partial_load: a.partial_load,
        },
        a.no_cache,
        a.keep_cache,
        a.cache_dir.clone(),
    )?;
    Ok(finish(train::run(&cfg)?, &cfg))
}

fn train_cmd(a: TrainArgs) -> Result<RunSummary> {
    println!("Running openspliceai-rs in train mode.");
    // From scratch: upstream's default size.
    let flank = a.common.flanking_size.unwrap_or(&CONFIGS[0]);
    let cfg = run_config(&a.common, flank, RunKind::Train, true, false, None)?;
    Ok(finish(train::run(&cfg)?, &cfg))
}

/// The flanking sizes a command may run with before its checkpoint is read: `-f`'s, or any.
pub(crate) fn flanks_or_all(requested: Option<&'static FlankConfig>) -> Vec<&'static FlankConfig> {
    match requested {
        Some(f) => vec![f],
        None => crate::model::CONFIGS.iter().collect(),
    }
}

/// Says where the flanking size came from when `-f` was not given (the checkpoint door read it).
fn say_flank(
    requested: Option<&'static FlankConfig>,
    flank: &'static FlankConfig,
    path: &Path,
    say: impl FnOnce(String),
) {
    if requested.is_none() {
        say(format!(
            "{}: SpliceAI-{} (no -f given: flanking size {} read from the checkpoint)",
            path.display(),
            flank.flank,
            flank.flank
        ));
    }
}

fn test_cmd(a: TestArgs) -> Result<()> {
    let test_log = crate::rundir::Split::Test.dir_name();
    Io::new()
        .input("--model", &a.model)
        .input("--test-dataset", &a.test_dataset)
        .input_opt("--temperature", a.temperature.as_ref())
        .output_dir_opt(
            "--output-dir",
            a.output_dir.as_ref(),
            [format!("LOG/{test_log}/")],
        )
        .check()?;
    let device = select_device(&a.compute.device)?;
    a.precision.select(&device)?;
    let (mut model, report) = crate::infer::load(&a.model, a.flanking_size, &device)?;
    let flank = model.config();
    say_flank(a.flanking_size, flank, &a.model, |l| println!("{l}"));
    println!("Loaded {}: {report}", a.model.display());
    if let Some(t) = infer::read_temperature(a.temperature.as_deref())? {
        model.set_temperature(Some(t.values()))?;
        println!("Scoring the calibrated model: logits divided by {t} before the softmax");
    }
    train::run_test(
        &model,
        &TestOptions {
            test_dataset: a.test_dataset,
            output_dir: a.output_dir,
            loss: a.loss,
            batch_size: a.compute.batch(flank),
            show_progress: !a.quiet,
            out: terminal(),
            console: a.console,
        },
    )?;
    Ok(())
}

fn example_data(a: ExampleDataArgs) -> Result<()> {
    let opts = ExampleOptions {
        train_shards: a.shards,
        windows_per_shard: a.windows,
        seed: a.seed,
        ..ExampleOptions::default()
    };
    let paths = write_example_data(&a.output_dir, &opts)?;
    println!(
        "wrote {} and {}",
        paths.train.display(),
        paths.test.display()
    );
    Ok(())
}

fn quickstart(a: QuickstartArgs) -> Result<()> {
    let t0 = std::time::Instant::now();
    let data_dir = a.dir.join("data");
    println!("### Step 1/3: create-data on a small synthetic genome (6 sequences, 270 genes)");
    let genome = crate::create_data::example::write_example_genome(&a.dir.join("genome"), 6, 45, 7)
        .context("cannot write the example genome")?;
    let mut cfg = crate::create_data::CreateDataConfig::new(
        genome.gff3.clone(),
        genome.fasta.clone(),
        data_dir.clone(),
    );
    cfg.progress = true;
    // One sequence of six for test.
    cfg.split_ratio = 0.85;
    let summary = crate::create_data::run(&cfg).context("create-data failed")?;
    print!("{summary}");
    let paths = ExamplePaths {
        train: data_dir.join("dataset_train.h5"),
        test: data_dir.join("dataset_test.h5"),
    };
    let validation = data_dir.join("dataset_validation.h5");
    println!(
        "Genome: {} and {}\nData: {}, {} and {}",
        genome.fasta.display(),
        genome.gff3.display(),
        paths.train.display(),
        validation.display(),
        paths.test.display()
    );
    let common = |project: &str, epochs: usize| CommonTrainArgs {
        train_dataset: paths.train.clone(),
        test_dataset: paths.test.clone(),
        validation_dataset: Some(validation.clone()),
        epochs,
        // Two epochs are too few for MultiStepLR, whose milestones (E-5..E-1) would all have passed:
        // the cosine schedule starts at the base learning rate.
        scheduler: train::schedule::SchedulerKind::CosineAnnealingWarmRestarts,
        early_stopping: false,
        patience: 2,
        output_dir: a.dir.join("runs"),
        project_name: project.to_string(),
        exp_num: "0".into(),
        flanking_size: Some(&CONFIGS[0]),
        random_seed: 42,
        loss: crate::metrics::Loss::CrossEntropyLoss,
        // Smaller batches give the short demo more optimiser steps.
        compute: ComputeArgs {
            batch_size: Some(12),
            device: a.device.clone(),
        },
        precision: Default::default(),
        overwrite: true,
        resume: false,
        progress: Default::default(),
        quiet: false,
        console: train::console::ConsoleMode::Table,
        no_report: false,
    };
    println!("\n### Step 2/3: train an 80nt SpliceAI from scratch (2 epochs)");
    let scratch = train_cmd(TrainArgs {
        common: common("quickstart_scratch", 2),
    })?;
    let best = scratch
        .best_model
        .clone()
        .context("the from-scratch run produced no model_best.pt")?;
    println!(
        "\n### Step 3/3: transfer from {} with --unfreeze 2 (2 epochs)",
        best.display()
    );
    let tcommon = common("quickstart_transfer", 2);
    let tr = transfer(TransferArgs {
        common: tcommon,
        pretrained_model: best.clone(),
        unfreeze_all: false,
        unfreeze: 2,
        freeze_bn: false,
        no_cache: false,
        keep_cache: false,
        cache_dir: None,
        partial_load: false,
    })?;
    println!(
        "\nQuickstart finished in {:.1} s.",
        t0.elapsed().as_secs_f64()
    );
    println!("  genome:          {}", genome.fasta.display());
    println!("  data:            {}", data_dir.display());
    println!(
        "  from scratch:    {} (best: {})",
        scratch.run_dir.display(),
        best.display()
    );
    println!("  transfer:        {}", tr.run_dir.display());
    if let Some(t) = &tr.best_test {
        println!(
            "  transfer test:   acceptor AUPRC {:.4}, donor AUPRC {:.4} (chance is about {:.4})",
            t.acceptor_auprc, t.donor_auprc, t.acceptor_chance
        );
    }
    println!(
        "  logs:            LOG/{{TRAIN,VAL,TEST}}/*.txt and metrics.jsonl in each run directory"
    );
    let report = a.dir.join("report.html");
    write_html_report(&[scratch.run_dir.clone(), tr.run_dir.clone()], &report)?;
    println!(
        "  report:          {} (both runs' curves; open it in a browser)",
        report.display()
    );
    Ok(())
}

fn report(a: ReportArgs) -> Result<()> {
    report_io(&a).check()?;
    let written = crate::report::write_report(
        &a.run_dirs,
        &crate::report::ReportOptions {
            output: a.output,
            chart_format: a.format,
        },
    )?;
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// `report`'s inputs (the files it reads in each run directory) and outputs (the HTML, the charts).
fn report_io(a: &ReportArgs) -> Io {
    let inputs = a
        .run_dirs
        .iter()
        .flat_map(|d| crate::rundir::report_inputs(d));
    let io = inputs.fold(Io::new(), |io, f| io.input("RUN_DIR", f));
    let io = io.output("-o", &a.output);
    match a.format {
        Some(f) => {
            let stem = a.output.file_stem().unwrap_or_default().to_string_lossy();
            let dir = a.output.parent().unwrap_or(Path::new(""));
            io.output_dir("-o", dir, [format!("{stem}-*.{}", f.extension())])
        }
        None => io,
    }
}

fn inspect(a: InspectArgs) -> Result<()> {
    let info = crate::model::inspect::inspect(&a.checkpoint)?;
    println!("{info}");
    Ok(())
}

fn convert(a: ConvertArgs) -> Result<()> {
    Io::new()
        .input("INPUT", &a.input)
        .output("OUTPUT", &a.output)
        .check()?;
    let sd = checkpoint::load(&a.input)?;
    // The checks of every command that loads a model: a broken checkpoint is not copied on.
    let flank = crate::model::io::check_state_dict(&a.input, &sd, None)?;
    checkpoint::save(&a.output, &sd)?;
    println!(
        "wrote {} ({} tensors, SpliceAI-{})",
        a.output.display(),
        sd.len(),
        flank.flank
    );
    Ok(())
}

fn forward(a: ForwardArgs) -> Result<()> {
    Io::new()
        .input("--model", &a.model)
        .input("--input", &a.input)
        .output("--output", &a.output)
        .check()?;
    let device = select_device(&a.compute.device)?;
    a.precision.select(&device)?;
    let (model, report) = crate::infer::load(&a.model, a.flanking_size, &device)?;
    let flank = model.config();
    say_flank(a.flanking_size, flank, &a.model, |l| println!("{l}"));
    log::info!("{}: {report}", a.model.display());
    let probs = forward_file(&model, &a.input, a.compute.batch(flank), &device)?;
    candle_core::safetensors::save(&[("probs", probs)].into_iter().collect(), &a.output)
        .with_context(|| format!("writing {}", a.output.display()))?;
    println!("wrote {} on {}", a.output.display(), describe(&device));
    Ok(())
}

/// Eval-mode forward over the tensor `x` of a safetensors file, `batch` windows at a time.
pub fn forward_file(
    model: &SpliceAi,
    input: &Path,
    batch: usize,
    device: &Device,
) -> Result<Tensor> {
    let tensors = candle_core::safetensors::load(input, &Device::Cpu)
        .with_context(|| format!("{}: not a readable safetensors file", input.display()))?;
    let x = tensors
        .get("x")
        .with_context(|| format!("{}: no tensor named `x`", input.display()))?;
    let want = model.config().input_len();
    match x.dims() {
        [0, IN_CHANNELS, _] => bail!(
            "{}: tensor `x` has shape {:?}: it holds no windows",
            input.display(),
            x.dims()
        ),
        [_, IN_CHANNELS, l] if *l == want => {}
        d => bail!(
            "{}: tensor `x` has shape {d:?}, expected (N, {IN_CHANNELS}, {want}) for flanking size {}",
            input.display(),
            model.config().flank
        ),
    }
    let x = x.to_dtype(candle_core::DType::F32)?;
    let n = x.dim(0)?;
    let mut outs = Vec::new();
    let mut i = 0;
    while i < n {
        let m = batch.max(1).min(n - i);
        let xb = upload_rows(&x, i, m, device)?;
        outs.push(model.predict(&xb)?.to_device(&Device::Cpu)?);
        i += m;
    }
    Ok(Tensor::cat(&outs, 0)?)
}

fn bench(a: BenchArgs) -> Result<()> {
    let device = select_device(&a.compute.device)?;
    let flanks = if a.flanking_size.is_empty() {
        CONFIGS.iter().collect()
    } else {
        a.flanking_size.clone()
    };
    if a.memory {
        return bench_memory(&device, &flanks, a.compute.batch_size);
    }
    let ceiling = crate::bench::matmul_ceiling(&device, 2048)?;
    let fma_peak = if device.is_cpu() {
        crate::bench::cpu_fma_peak()
    } else {
        None
    };
    println!(
        "device: {} | f32 matmul 2048³ ceiling: {ceiling:.1} GFLOP/s{}",
        describe(&device),
        fma_peak.map_or(String::new(), |p| format!(
            " | FMA peak (AVX-512, registers only): {p:.1} GFLOP/s"
        ))
    );
    a.precision.select(&device)?;
    if a.precision.precision == crate::ops::precision::Precision::Bf16 && device.is_cpu() {
        if let Some(p) = crate::bench::cpu_bf16_peak() {
            println!("bf16 dot-product peak (vdpbf16ps, registers only): {p:.1} GFLOP/s");
        }
    }
    if device.is_cpu() {
        println!("conv kernel: {}", crate::ops::conv::cpu_kernel_name());
    }
    for cfg in flanks {
        let f = cfg.flank;
        let batch = a.compute.batch(cfg);
        println!("\nSpliceAI-{f}, batch {batch}:");
        println!(
            "{:<28} {:>12} {:>12} {:>10} {:>11} {:>8}",
            "workload", "ms/window", "windows/s", "GFLOP/s", "% ceiling", "% peak"
        );
        for r in crate::bench::run(cfg, &device, batch, a.reps)? {
            println!(
                "{:<28} {:>12.2} {:>12.2} {:>10.1} {:>10.1}% {:>8}",
                r.name,
                r.ms_per_window,
                r.windows_per_s,
                r.gflops,
                100.0 * r.gflops / ceiling,
                fma_peak.map_or("-".into(), |p| format!("{:.1}%", 100.0 * r.gflops / p))
            );
        }
    }
    if let Some(rss) = crate::bench::peak_rss_mib() {
        println!("\npeak RSS: {rss:.0} MiB");
    }
    Ok(())
}

/// `bench --memory`: the bytes a train step keeps for backward and its peak, per flanking size, measured at
/// the given batch and scaled per window to the default batch (activations grow linearly with it).
fn bench_memory(
    device: &Device,
    flanks: &[&'static FlankConfig],
    batch: Option<usize>,
) -> Result<()> {
    let path = crate::ops::path::ops_path()?;
    println!(
        "device: {} | ops: {} | bytes a train step keeps alive after forward (for backward), and its peak",
        describe(device),
        match (device.is_cpu(), path) {
            (false, crate::ops::path::OpsPath::Stock) => "stock-op graph (OSAI_OPS=stock)",
            (false, _) if device.is_cuda() => "CUDA graph",
            (false, _) => "stock-op graph",
            (true, crate::ops::path::OpsPath::Native) => "native CPU kernels",
            (true, crate::ops::path::OpsPath::Reference) => "CUDA graph (OSAI_OPS=reference)",
            (true, crate::ops::path::OpsPath::Stock) => "stock-op graph (OSAI_OPS=stock)",
        }
    );
    let gib = |b: f64| b / (1u64 << 30) as f64;
    println!(
        "{:<8} {:<27} {:>6} {:>12} {:>12} {:>12} {:>16} {:>14}",
        "flank",
        "workload",
        "batch",
        "kept MiB",
        "peak MiB",
        "device MiB",
        "kept GiB @dflt",
        "peak GiB @dflt"
    );
    for &cfg in flanks {
        let f = cfg.flank;
        let b = batch.unwrap_or(cfg.batch_size);
        for r in crate::bench::train_memory(cfg, device, b)? {
            let per = |v: usize| gib(v as f64 / b as f64 * cfg.batch_size as f64);
            println!(
                "{:<8} {:<27} {:>6} {:>12.1} {:>12.1} {:>12} {:>11.2} @{:<3} {:>14.2}",
                format!("{f}nt"),
                r.name,
                b,
                r.kept as f64 / (1u64 << 20) as f64,
                r.peak as f64 / (1u64 << 20) as f64,
                r.device_kept.map_or("-".into(), |d| format!(
                    "{:.1}",
                    d as f64 / (1u64 << 20) as f64
                )),
                per(r.kept),
                cfg.batch_size,
                per(r.peak)
            );
        }
    }
    Ok(())
}

fn create_data(a: CreateDataArgs) -> Result<()> {
    use crate::create_data::{self as cd, CreateDataConfig};
    Io::new()
        .input("--annotation-gff", &a.annotation_gff)
        .input("--genome-fasta", &a.genome_fasta)
        .output_dir("--output-dir", &a.output_dir, cd::OUTPUT_NAMES)
        .check()?;
    let mut cfg = CreateDataConfig::new(a.annotation_gff, a.genome_fasta, a.output_dir.clone());
    cfg.parse_type = a.parse_type;
    cfg.biotype = a.biotype;
    cfg.chr_split = a.chr_split;
    cfg.split_method = a.split_method;
    cfg.val_split_ratio = a.val_split_ratio;
    cfg.split_ratio = a.split_ratio;
    cfg.canonical_only = a.canonical_only;
    cfg.remove_paralogs = a.remove_paralogs;
    cfg.min_identity = a.min_identity;
    cfg.min_coverage = a.min_coverage;
    cfg.write_fasta = a.write_fasta;
    cfg.random_seed = a.random_seed;
    cfg.upstream_bugs = a.upstream_bugs;
    cfg.gene_split = !a.no_gene_split;
    cfg.progress = !a.quiet;
    let summary = cd::run(&cfg).context("create-data failed")?;
    print!("{summary}");
    if a.verify_h5 {
        for line in cd::verify_written(&a.output_dir, &summary.written)? {
            println!("{line}");
        }
    }
    Ok(())
}

/// The quickstart's training and test files.
struct ExamplePaths {
    train: std::path::PathBuf,
    test: std::path::PathBuf,
}
