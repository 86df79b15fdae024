#!/usr/bin/env bash
# The Snakemake workflow (workflow/) run for real on small inputs, as CI runs it (.ci/run calls this after
# the tests):
#   1. Snakemake + the SLURM executor plugin from PyPI into a cached venv (scripts/snakemake.sh)
#   2. score_vcf with the local profile: the 91-record fly VCF (bgzipped, tabix-indexed) in 3 shards, and
#      once per contig, scored with the 80nt MANE model; the merged VCF's records must equal one unsharded
#      `variant` run's, and its index must read back (tabix, bcftools)
#   3. fine_tune with the local profile: two small genomes cut from the create-data inputs (A. arenosa
#      2 x 200 kb, D. melanogaster chr2R 400 kb), three runs (80nt and 400nt MANE, 2 epochs each); one
#      transfer job is stopped with SIGTERM after its first epoch (as Slurm does at a time limit), and
#      Snakemake's retry must continue it (--resume); checked: one summary row per run, the reports
#      written; a second run of Snakemake has nothing left to do
#   4. the SLURM profile's jobs rendered with --dry-run (no SLURM needed)
# Each part prints its time. Data in ../shared absent: SKIP with a message, except under CI=true (fail).
#
# usage: scripts/ci-workflow.sh [WORK_DIR]
#   OSAI_BIN          the binary (default $CARGO_TARGET_DIR or target, then /release/openspliceai-rs)
#   OSAI_PV_DATA, OSAI_CREATE_DATA, OSAI_FIXTURES   the data folders (default ../shared/...)
#   WORK_DIR          where the runs go (default: a temporary directory, removed when all passed)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
start=$(date +%s)
elapsed() { echo "$(($(date +%s) - $1)) s"; }
fail() { echo "ci-workflow: FAIL: $*" >&2; exit 1; }
skip() { # the reason → SKIP (exit 0), or a failure under CI=true
  if [ "${CI:-}" = true ]; then fail "$1; it is required under CI=true"; fi
  echo "SKIP: ci-workflow: $1"
  exit 0
}

bin=${OSAI_BIN:-${CARGO_TARGET_DIR:-target}/release/openspliceai-rs}
[ -x "$bin" ] || fail "no binary $bin (cargo build --release, or set OSAI_BIN)"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
shared=$repo/../shared
pv=${OSAI_PV_DATA:-$shared/data/predict-variant}
cd_inputs=${OSAI_CREATE_DATA:-$shared/data/create-data}/inputs
fixtures=${OSAI_FIXTURES:-$shared/fixtures}
model80=$fixtures/openspliceai-mane/80nt/model_80nt_rs10.pt
model400=$fixtures/openspliceai-mane/400nt/model_400nt_rs10.pt
for f in "$pv/inputs/variants.vcf" "$pv/inputs/region200k.fa" "$pv/inputs/genes_region200k.txt" \
  "$cd_inputs/aare_chr1_chr2_1Mb.fa.gz" "$cd_inputs/aare_chr1_chr2_1Mb.gff3.gz" \
  "$cd_inputs/dmel_chr2R_dm3.fa.gz" "$cd_inputs/dmel_chr2R_dm3.gff3.gz" "$model80" "$model400"; do
  [ -e "$f" ] || skip "missing $f (test data kept outside the repository)"
done
for tool in bgzip tabix bcftools python3; do
  command -v $tool >/dev/null || fail "$tool is not installed (scripts/ci-setup.sh installs it)"
done

echo "== workflow: Snakemake and the SLURM executor plugin (scripts/snakemake.sh)"
t0=$(date +%s)
smk_bin=$(scripts/snakemake.sh ensure)
snakemake="$smk_bin/snakemake"
"$snakemake" --version
echo "snakemake venv: $(elapsed "$t0")"

if [ -n "${1:-}" ]; then
  work=$1
  rm -rf "$work"
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/osai-workflow.XXXXXX")
fi
work=$(cd "$work" && pwd)
echo "work directory: $work"
# Options with several values (--quiet, --config, --configfile) never stand just before the targets.
smk=("$snakemake" -s "$repo/workflow/Snakefile" --quiet host reason --directory "$work" --cores 2)

echo "== workflow score_vcf (local profile): 3 shards, and one per contig, against one unsharded run"
t0=$(date +%s)
mkdir -p "$work/in"
bgzip -c "$pv/inputs/variants.vcf" >"$work/in/variants.vcf.gz"
tabix -p vcf "$work/in/variants.vcf.gz"
cat >"$work/score_vcf.yaml" <<YAML
binary: $bin
outdir: out3
score_vcf:
  vcf: in/variants.vcf.gz
  reference: $pv/inputs/region200k.fa
  annotation: $pv/inputs/genes_region200k.txt
  models: [$model80]
  shards: 3
YAML
# The shard and merge flags (variant --shard/--region, merge) come with issue 21's other parts.
if ! "$bin" variant --help | grep -q -- '--shard' || ! "$bin" merge --help >/dev/null 2>&1; then
  if [ "${CI:-}" = true ]; then fail "$bin has no variant --shard or no merge command"; fi
  echo "SKIP: $bin has no variant --shard or no merge command; score_vcf only as a dry run"
  "${smk[@]}" --profile "$repo/workflow/profiles/local" -n score_vcf --configfile "$work/score_vcf.yaml"
else
  "${smk[@]}" --profile "$repo/workflow/profiles/local" score_vcf --configfile "$work/score_vcf.yaml"
  sed -e 's/^outdir: out3/outdir: outc/' -e 's/^  shards: 3/  shards: contigs/' "$work/score_vcf.yaml" \
    >"$work/score_vcf_contigs.yaml"
  "${smk[@]}" --profile "$repo/workflow/profiles/local" score_vcf --configfile "$work/score_vcf_contigs.yaml"
  (cd "$work" && "$bin" variant -I in/variants.vcf.gz -R "$pv/inputs/region200k.fa" \
    -A "$pv/inputs/genes_region200k.txt" -m "$model80" --device cpu -q -O unsharded.vcf.gz)
  body() { zcat "$1" | grep -v '^##'; } # the column header and the records
  for merged in out3/score_vcf/variants.vcf.gz outc/score_vcf/variants.vcf.gz; do
    [ -s "$work/$merged.tbi" ] || fail "$merged has no .tbi"
    cmp <(body "$work/$merged") <(body "$work/unsharded.vcf.gz") ||
      fail "$merged: its records differ from the unsharded run's"
    n=$(bcftools view -H "$work/$merged" | wc -l)
    [ "$n" -eq "$(grep -vc '^#' "$pv/inputs/variants.vcf")" ] || fail "$merged: bcftools reads $n records"
    tabix -l "$work/$merged" >/dev/null || fail "$merged: tabix cannot read its index"
    echo "$merged: $n records, equal to the unsharded run's; its .tbi reads back"
  done
fi
echo "score_vcf: $(elapsed "$t0")"

echo "== workflow fine_tune (local profile): 2 small genomes, 3 runs, 2 epochs each, one stopped and retried"
t0=$(date +%s)
python3 workflow/scripts/subset_genome.py "$cd_inputs/aare_chr1_chr2_1Mb.fa.gz" \
  "$cd_inputs/aare_chr1_chr2_1Mb.gff3.gz" "$work/in/arenosa" LR999451.1:1-200000 LR999452.1:1-200000
python3 workflow/scripts/subset_genome.py "$cd_inputs/dmel_chr2R_dm3.fa.gz" \
  "$cd_inputs/dmel_chr2R_dm3.gff3.gz" "$work/in/dmel" chr2R:7000001-7400000
{
  printf 'species\tfasta\tannotation\tpretrained_model\tflanking_size\ttransfer_mode\n'
  printf 'arenosa\tin/arenosa.fa\tin/arenosa.gff3\t%s\t80\tunfreeze-2\n' "$model80"
  printf 'arenosa\tin/arenosa.fa\tin/arenosa.gff3\t%s\t400\tunfreeze-1-freeze-bn\n' "$model400"
  printf 'dmel\tin/dmel.fa\tin/dmel.gff3\t%s\t80\tall\n' "$model80"
} >"$work/samples.tsv"
cat >"$work/fine_tune.yaml" <<YAML
binary: $bin
outdir: out
fine_tune:
  samples: samples.tsv
  epochs: 2
YAML
# The stand-in for a time limit: once the arenosa 80nt run has finished its first epoch, SIGTERM to the
# transfer process that holds its run directory (run.lock names it: "pid N: command").
run80=$work/out/fine_tune/arenosa/transfer_80nt/SpliceAI_arenosa_80_0_rs42/0
(
  for _ in $(seq 1 3000); do
    if [ -e "$run80/models/model_0.pt" ] && [ -s "$run80/run.lock" ]; then
      pid=$(sed -n 's/^pid \([0-9]*\):.*/\1/p' "$run80/run.lock")
      if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "transfer .*arenosa/transfer_80nt"; then
        kill -TERM "$pid" && echo "stopped transfer (pid $pid) after its first epoch" >"$work/stopped.txt"
      fi
      exit 0
    fi
    sleep 0.2
  done
) &
watcher=$!
status=0
"${smk[@]}" --profile "$repo/workflow/profiles/local" fine_tune --configfile "$work/fine_tune.yaml" || status=$?
kill "$watcher" 2>/dev/null || true # the watcher is done, unless the run ended before its first epoch
wait "$watcher" 2>/dev/null || true
[ "$status" -eq 0 ] || fail "the fine_tune workflow failed (exit $status)"
[ -s "$work/stopped.txt" ] || fail "the arenosa 80nt transfer was not stopped after its first epoch"
cat "$work/stopped.txt"
grep -h 'Resuming' "$work/out/logs/fine_tune/arenosa_80nt.transfer.log" ||
  fail "the retried transfer did not resume its run directory"
[ -e "$run80/models/model_1.pt" ] || fail "the resumed run did not finish its second epoch"
summary=$work/out/fine_tune/summary.tsv
column -t "$summary"
[ "$(wc -l <"$summary")" -eq 4 ] || fail "$summary: expected a header and 3 rows"
for f in out/fine_tune/report.html out/fine_tune/arenosa/report.html out/fine_tune/dmel/report.html \
  out/fine_tune/arenosa/test_400nt/LOG/TEST/loss_batch.txt; do
  [ -s "$work/$f" ] || fail "no $f"
done
"${smk[@]}" --profile "$repo/workflow/profiles/local" -n fine_tune --configfile "$work/fine_tune.yaml" 2>&1 \
  | tee "$work/again.txt"
grep -q 'Nothing to be done' "$work/again.txt" || fail "a second fine_tune run still had jobs to run"
echo "fine_tune: $(elapsed "$t0")"

echo "== workflow: the SLURM profile's jobs, rendered with --dry-run (device cuda: a GPU per GPU job)"
t0=$(date +%s)
"${smk[@]}" --profile "$repo/workflow/profiles/slurm" -n -p score_vcf fine_tune \
  --config outdir=slurm device=cuda --configfile "$work/score_vcf.yaml" "$work/fine_tune.yaml" \
  >"$work/slurm-dry-run.txt" 2>&1 || { cat "$work/slurm-dry-run.txt"; fail "the SLURM dry run failed"; }
for rule in variant_shard merge_shards create_data transfer test; do
  grep -q "rule $rule:" "$work/slurm-dry-run.txt" || fail "the SLURM dry run has no $rule job"
done
grep -q -- '--device cuda --resume' "$work/slurm-dry-run.txt" || fail "the SLURM dry run's transfer is not --resume on cuda"
resources=$(grep -A12 'rule transfer:' "$work/slurm-dry-run.txt" | grep -m1 'resources:')
echo "transfer job:$resources"
case $resources in *gpu=1*) ;; *) fail "the SLURM dry run's transfer job asks for no GPU" ;; esac
echo "slurm dry run: $(elapsed "$t0")"

if [ -z "${1:-}" ]; then rm -rf "$work"; fi
echo "== workflow: all parts passed in $(elapsed "$start")"
