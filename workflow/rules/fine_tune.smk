# fine_tune: a sample sheet -> per species create-data -> transfer (per flanking size) -> test -> report,
# and one summary of every run's test scores.
#
# The sample sheet (config fine_tune.samples) is a TSV with a header line and these columns:
#   species           a name for the species (letters, digits, `_`, `-`, `.`): the output folder's name
#   fasta             its genome FASTA (plain, gzip or bgzip)
#   annotation        its GFF3 or GTF (plain, gzip or bgzip)
#   pretrained_model  the checkpoint to fine-tune (.pt or .safetensors) of this row's flanking size
#   flanking_size     80, 400, 2000 or 10000
#   transfer_mode     all (`-A`), unfreeze-N (`-u N`) or unfreeze-N-freeze-bn (`-u N --freeze-bn`)
# One row is one run; a species may have several rows (one per flanking size), which share its data.
#
# Outputs, under OUT/fine_tune/:
#   SPECIES/data/dataset_{train,validation,test}.h5      create-data
#   SPECIES/transfer_{F}nt/SpliceAI_SPECIES_{F}_0_rs{seed}/0/   the run directory of transfer (--resume)
#   SPECIES/model_{F}nt.pt                               a copy of the run's models/model_best.pt
#   SPECIES/test_{F}nt/metrics.jsonl, LOG/TEST/          test of that model on the species' test set
#   SPECIES/report.html                                  report over the species' runs and tests
#   summary.tsv, report.html                             every run's test scores; report over every run
import csv
import json
import re

FT = config.get("fine_tune") or {}
FLANKS = ("80", "400", "2000", "10000")
COLUMNS = ("species", "fasta", "annotation", "pretrained_model", "flanking_size", "transfer_mode")
_SAMPLES = []


def ft_samples():
    """The sample sheet's rows (dicts), checked once."""
    if _SAMPLES:
        return _SAMPLES
    sheet = FT.get("samples")
    if not sheet:
        raise WorkflowError("config fine_tune.samples is missing: the sample sheet (TSV) to fine-tune on")
    try:
        with open(sheet, newline="") as f:
            rows = list(csv.DictReader((l for l in f if l.strip() and not l.startswith("##")), delimiter="\t"))
    except OSError as e:
        raise WorkflowError(f"fine_tune.samples: cannot read {sheet}: {e}")
    header = list(rows[0].keys()) if rows else []
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise WorkflowError(f"{sheet}: no column {', '.join(missing)}; expected the columns {' '.join(COLUMNS)}")
    seen, genome = set(), {}
    for n, row in enumerate(rows, start=2):
        row = {k: (v or "").strip() for k, v in row.items() if k}
        where = f"{sheet} line {n}"
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", row["species"]):
            raise WorkflowError(f"{where}: species {row['species']!r}: expected letters, digits, `_`, `-`, `.`")
        if row["flanking_size"] not in FLANKS:
            raise WorkflowError(f"{where}: flanking_size {row['flanking_size']!r}: expected one of {', '.join(FLANKS)}")
        transfer_flags(row["transfer_mode"], where)
        key = (row["species"], row["flanking_size"])
        if key in seen:
            raise WorkflowError(f"{where}: a second row for species {key[0]} at {key[1]}nt")
        seen.add(key)
        data = (row["fasta"], row["annotation"])
        if genome.setdefault(row["species"], data) != data:
            raise WorkflowError(f"{where}: species {row['species']} has another fasta/annotation on an earlier row")
        _SAMPLES.append(row)
    if not _SAMPLES:
        raise WorkflowError(f"{sheet}: no rows")
    return _SAMPLES


def transfer_flags(mode, where="fine_tune"):
    if mode == "all":
        return "-A"
    m = re.fullmatch(r"unfreeze-([0-9]+)(-freeze-bn)?", mode)
    if not m:
        raise WorkflowError(
            f"{where}: transfer_mode {mode!r}: expected all, unfreeze-N or unfreeze-N-freeze-bn"
        )
    return f"-u {m.group(1)}" + (" --freeze-bn" if m.group(2) else "")


def ft_row(wildcards):
    for row in ft_samples():
        if row["species"] == wildcards.species and (
            "flank" not in wildcards.keys() or row["flanking_size"] == wildcards.flank
        ):
            return row
    raise WorkflowError(f"no sample sheet row for {dict(wildcards)}")


def ft_setting(key, default):
    value = FT.get(key, default)
    return default if value is None else value


SEED = int(ft_setting("seed", 42))
FTDIR = f"{OUT}/fine_tune"


def run_dir(species, flank):
    """transfer's run directory: OUTPUT_DIR/SpliceAI_{project}_{flank}_{exp}_rs{seed}/{exp}/."""
    return f"{FTDIR}/{species}/transfer_{flank}nt/SpliceAI_{species}_{flank}_0_rs{SEED}/0"


def species_runs(species):
    return [r for r in ft_samples() if r["species"] == species]


rule fine_tune:
    input:
        lambda wc: f"{FTDIR}/summary.tsv",
        lambda wc: f"{FTDIR}/report.html",
        lambda wc: sorted({f"{FTDIR}/{r['species']}/report.html" for r in ft_samples()}),


rule create_data:
    input:
        fasta=lambda wc: ft_row(wc)["fasta"],
        annotation=lambda wc: ft_row(wc)["annotation"],
    output:
        train=f"{FTDIR}/{{species}}/data/dataset_train.h5",
        validation=f"{FTDIR}/{{species}}/data/dataset_validation.h5",
        test=f"{FTDIR}/{{species}}/data/dataset_test.h5",
    params:
        dir=f"{FTDIR}/{{species}}/data",
        extra=ft_setting("create_data_extra", ""),
    log:
        f"{OUT}/logs/fine_tune/{{species}}.create_data.log",
    threads: res("create_data", "threads")
    resources:
        mem_mb=res("create_data", "mem_mb"),
        runtime=res("create_data", "runtime"),
    shell:
        "{BIN} create-data --genome-fasta {input.fasta:q} --annotation-gff {input.annotation:q}"
        " --output-dir {params.dir:q} --random-seed {SEED} {params.extra} > {log:q} 2>&1"


# `--resume`: a job that was stopped (its time limit, a requeue, a retry) continues the run from its last
# complete epoch. The run directory is not a declared output, so Snakemake leaves it in place when it
# retries the job; the declared output (the best model's copy) is written only once the run has ended.
rule transfer:
    input:
        train=f"{FTDIR}/{{species}}/data/dataset_train.h5",
        validation=f"{FTDIR}/{{species}}/data/dataset_validation.h5",
        test=f"{FTDIR}/{{species}}/data/dataset_test.h5",
        pretrained=lambda wc: ft_row(wc)["pretrained_model"],
    output:
        model=f"{FTDIR}/{{species}}/model_{{flank}}nt.pt",
    wildcard_constraints:
        flank="|".join(FLANKS),
    params:
        dir=f"{FTDIR}/{{species}}/transfer_{{flank}}nt",
        run=lambda wc: run_dir(wc.species, wc.flank),
        mode=lambda wc: transfer_flags(ft_row(wc)["transfer_mode"]),
        epochs=int(ft_setting("epochs", 10)),
        extra=ft_setting("transfer_extra", ""),
    log:
        f"{OUT}/logs/fine_tune/{{species}}_{{flank}}nt.transfer.log",
    threads: res("train", "threads")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=res("train", "runtime"),
        gpu=GPUS,
    shell:
        "RAYON_NUM_THREADS={threads} {BIN} transfer --train-dataset {input.train:q}"
        " --validation-dataset {input.validation:q} --test-dataset {input.test:q}"
        " -m {input.pretrained:q} -f {wildcards.flank} {params.mode} -n {params.epochs}"
        " -o {params.dir:q} -p {wildcards.species} -r {SEED} --device {DEVICE} --resume {params.extra}"
        " > {log:q} 2>&1 && cp {params.run:q}/models/model_best.pt {output.model:q}"


rule test:
    input:
        model=f"{FTDIR}/{{species}}/model_{{flank}}nt.pt",
        test=f"{FTDIR}/{{species}}/data/dataset_test.h5",
    output:
        metrics=f"{FTDIR}/{{species}}/test_{{flank}}nt/metrics.jsonl",
    params:
        dir=f"{FTDIR}/{{species}}/test_{{flank}}nt",
    log:
        f"{OUT}/logs/fine_tune/{{species}}_{{flank}}nt.test.log",
    threads: res("test", "threads")
    resources:
        mem_mb=res("test", "mem_mb"),
        runtime=res("test", "runtime"),
        gpu=GPUS,
    shell:
        "RAYON_NUM_THREADS={threads} {BIN} test -m {input.model:q} --test-dataset {input.test:q}"
        " -f {wildcards.flank} -o {params.dir:q} --device {DEVICE} > {log:q} 2>&1"


rule species_report:
    input:
        tests=lambda wc: [
            f"{FTDIR}/{wc.species}/test_{r['flanking_size']}nt/metrics.jsonl" for r in species_runs(wc.species)
        ],
    output:
        f"{FTDIR}/{{species}}/report.html",
    params:
        runs=lambda wc: [
            d
            for r in species_runs(wc.species)
            for d in (run_dir(wc.species, r["flanking_size"]), f"{FTDIR}/{wc.species}/test_{r['flanking_size']}nt")
        ],
    log:
        f"{OUT}/logs/fine_tune/{{species}}.report.log",
    threads: res("report", "threads")
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    shell:
        "{BIN} report {params.runs:q} -o {output:q} > {log:q} 2>&1"


rule combined_report:
    input:
        tests=lambda wc: [
            f"{FTDIR}/{r['species']}/test_{r['flanking_size']}nt/metrics.jsonl" for r in ft_samples()
        ],
    output:
        f"{FTDIR}/report.html",
    params:
        runs=lambda wc: [run_dir(r["species"], r["flanking_size"]) for r in ft_samples()],
    log:
        f"{OUT}/logs/fine_tune/report.log",
    threads: res("report", "threads")
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    shell:
        "{BIN} report {params.runs:q} -o {output:q} > {log:q} 2>&1"


def metrics_line(path, epoch, split):
    """The metrics.jsonl object of an epoch and split (docs/outputs.md: schema version 1)."""
    with open(path) as f:
        for line in f:
            m = json.loads(line)
            if m.get("epoch") == epoch and m.get("split") == split:
                return m
    raise WorkflowError(f"{path}: no line for epoch {epoch}, split {split}")


def fmt(value):
    return "NA" if value is None else f"{value:.4f}"


rule summary:
    input:
        tests=lambda wc: [
            f"{FTDIR}/{r['species']}/test_{r['flanking_size']}nt/metrics.jsonl" for r in ft_samples()
        ],
    output:
        f"{FTDIR}/summary.tsv",
    threads: 1
    resources:
        mem_mb=200,
        runtime=5,
    run:
        # One row per run: the fine-tuned model's test scores (test's metrics.jsonl) beside the pretrained
        # model's zero-shot test scores (the run's metrics.jsonl, epoch -1).
        cols = ["species", "flanking_size", "transfer_mode", "pretrained_model", "test_windows", "test_loss",
                "acceptor_top1", "acceptor_auprc", "donor_top1", "donor_auprc",
                "zero_shot_loss", "zero_shot_acceptor_auprc", "zero_shot_donor_auprc"]
        lines = ["\t".join(cols)]
        for row, path in zip(ft_samples(), input.tests):
            t = metrics_line(path, 0, "test")
            z = metrics_line(f"{run_dir(row['species'], row['flanking_size'])}/metrics.jsonl", -1, "test")
            lines.append("\t".join([row["species"], row["flanking_size"], row["transfer_mode"],
                os.path.basename(row["pretrained_model"]), str(t["windows"]), fmt(t["loss"]),
                fmt(t["acceptor"]["topk"]), fmt(t["acceptor"]["auprc"]),
                fmt(t["donor"]["topk"]), fmt(t["donor"]["auprc"]),
                fmt(z["loss"]), fmt(z["acceptor"]["auprc"]), fmt(z["donor"]["auprc"])]))
        tmp = output[0] + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, output[0])
