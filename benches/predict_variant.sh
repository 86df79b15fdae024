#!/usr/bin/env bash
# predict and variant beside OpenSpliceAI 0.0.7 (PyTorch, CPU) on the shared fly data, same machine, same
# session: wall time and peak RSS (GNU time), windows/s and variants/s.
# usage: benches/predict_variant.sh [ours|upstream|both]   (needs ../shared; upstream through
#        ../shared/tools/pytorch-baseline.sh, which builds its venv on first use)
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-both}
shared=${OSAI_SHARED:-../shared}
data=$shared/data/predict-variant/inputs
models=$shared/fixtures/openspliceai-mane
bin=target/release/openspliceai-rs
[ -x "$bin" ] || cargo build --release
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# upstream writes a .fai beside its inputs: work on copies
cp "$data/region200k.fa" "$data/genes_region200k.txt" "$data/variants.vcf" "$tmp/"
venv_bin=${OSAI_TORCH_VENV:-$HOME/.cache/openspliceai-torch-venv}/bin
bash "$shared/tools/pytorch-baseline.sh" python -c 'import openspliceai' >/dev/null
nproc_=$(nproc)
# 200 kb → 40 windows of 5000 positions; 91 VCF records
windows=40 variants=91
printf '%-10s %-28s %8s %8s %9s %12s\n' tool workload wall_s cpu_s rss_MiB throughput
measure() { # tool workload unit count cmd...
  local tool=$1 work=$2 unit=$3 count=$4; shift 4
  /usr/bin/time -f '%e %U %S %M' -o "$tmp/time" "$@" >"$tmp/out.log" 2>&1 || { echo "$tool $work failed:"; tail -5 "$tmp/out.log"; return; }
  read -r wall user sys kb <"$tmp/time"
  printf '%-10s %-28s %8.2f %8.2f %9.0f %12s\n' "$tool" "$work" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN{print u+s}')" "$((kb / 1024))" \
    "$(awk -v c="$count" -v w="$wall" -v u="$unit" 'BEGIN{printf "%.1f %s", c/w, u}')"
}
for f in 400 10000; do
  m=$models/${f}nt/model_${f}nt_rs10.pt
  [ "$which" = upstream ] || measure ours "predict ${f}nt 200kb" windows/s $windows \
    "$bin" predict -q -i "$tmp/region200k.fa" -m "$m" -f "$f" -o "$tmp/ours_p$f"
  [ "$which" = ours ] || measure upstream "predict ${f}nt 200kb" windows/s $windows \
    "$venv_bin/openspliceai" predict -i "$tmp/region200k.fa" -m "$m" -f "$f" -o "$tmp/up_p$f"
done
m=$models/10000nt/model_10000nt_rs10.pt
[ "$which" = upstream ] || measure ours "variant 10000nt 91 records" variants/s $variants \
  "$bin" variant -q -R "$tmp/region200k.fa" -A "$tmp/genes_region200k.txt" -I "$tmp/variants.vcf" \
  -O "$tmp/ours.vcf" -m "$m" -f 10000
[ "$which" = ours ] || measure upstream "variant 10000nt 91 records" variants/s $variants \
  "$venv_bin/openspliceai" variant -R "$tmp/region200k.fa" -A "$tmp/genes_region200k.txt" -I "$tmp/variants.vcf" \
  -O "$tmp/up.vcf" -m "$m" -f 10000
echo "CPU threads: $nproc_; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
