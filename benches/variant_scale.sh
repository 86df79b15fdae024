#!/usr/bin/env bash
# variant and predict throughput on one node (issue: genome scale): a generated VCF of random SNVs inside fly 2R's
# genes (seeded, sorted), scored at 1 and 2 threads (RAYON_NUM_THREADS); peak RSS at 10k and 100k records to show
# that memory does not grow with the VCF (records stream through in fixed chunks).
# (per_s: variants/s, or windows/s for predict)
# usage: benches/variant_scale.sh [THROUGHPUT_RECORDS [FLANK_FOR_RSS]]   (defaults: 300 80)
#   THROUGHPUT_RECORDS records are scored with the 10000nt model at 1 and 2 threads; the 10k and 100k files are run
#   whole with the FLANK_FOR_RSS model (10000nt would take hours here). Needs ../shared (or OSAI_SHARED).
set -euo pipefail
cd "$(dirname "$0")/.."
n_fast=${1:-300}
rss_flank=${2:-80}
shared=${OSAI_SHARED:-../shared}
inputs=$shared/data/create-data/inputs
models=$shared/fixtures/openspliceai-mane
bin=${OSAI_BIN:-target/release/openspliceai-rs}
[ -x "$bin" ] || cargo build --release
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gunzip -c "$inputs/dmel_chr2R_dm3.fa.gz" >"$tmp/2R.fa"
cp "$inputs/dmel_chr2R_dm3.gff3.gz" "$tmp/2R.gff3.gz"
python3 - "$tmp" 100000 <<'PY'
import gzip, random, sys
tmp, n = sys.argv[1], int(sys.argv[2])
seq = "".join(l.strip() for l in open(f"{tmp}/2R.fa") if not l.startswith(">")).upper()
genes = [(int(c[3]), int(c[4])) for c in (l.split("\t") for l in gzip.open(f"{tmp}/2R.gff3.gz", "rt"))
         if len(c) > 4 and c[2] == "gene"]
rng = random.Random(21)
pos = set()
while len(pos) < n:
    s, e = rng.choice(genes)
    p = rng.randint(s, e)
    if seq[p - 1] in "ACGT":
        pos.add(p)
def write(path, chosen):
    with open(path, "w") as f:
        f.write("##fileformat=VCFv4.2\n##contig=<ID=chr2R,length=%d>\n" % len(seq))
        f.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        for p in sorted(chosen):
            ref = seq[p - 1]
            alt = "ACGT"[("ACGT".index(ref) + 1 + p % 3) % 4]
            f.write(f"chr2R\t{p}\t.\t{ref}\t{alt}\t.\t.\t.\n")
allp = sorted(pos)
rng.shuffle(allp)
write(f"{tmp}/v100000.vcf", allp)
write(f"{tmp}/v10000.vcf", allp[:10000])
PY
head -n $((3 + n_fast)) "$tmp/v100000.vcf" >"$tmp/vfast.vcf"
printf '%-40s %8s %8s %9s %12s\n' workload wall_s cpu_s rss_MiB per_s
measure() { # workload count cmd...
  local work=$1 count=$2; shift 2
  /usr/bin/time -f '%e %U %S %M' -o "$tmp/time" "$@" >"$tmp/out.log" 2>&1 || { echo "$work failed:"; tail -5 "$tmp/out.log"; return; }
  read -r wall user sys kb <"$tmp/time"
  printf '%-40s %8.1f %8.1f %9.0f %12.1f\n' "$work" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN{print u+s}')" \
    "$((kb / 1024))" "$(awk -v c="$count" -v w="$wall" 'BEGIN{print c/w}')"
}
variant_args() { # flank vcf out → the variant command line (threads through env, as /usr/bin/time runs it)
  echo "$bin variant -q -R $tmp/2R.fa -A $tmp/2R.gff3.gz -I $2 -O $3 -m $models/${1}nt/model_${1}nt_rs10.pt -f $1"
}
for t in 1 2; do
  # shellcheck disable=SC2046 # the words of the command line, none with spaces
  measure "variant 10000nt, $n_fast records, $t thread(s)" "$n_fast" env RAYON_NUM_THREADS=$t \
    $(variant_args 10000 "$tmp/vfast.vcf" "$tmp/o.vcf")
done
for t in 1 2; do # 200 kb of chr2R, both strands' 5000-base windows: 80 windows
  measure "predict 10000nt, 80 windows, $t thread(s)" 80 env RAYON_NUM_THREADS=$t "$bin" predict -q -i "$tmp/2R.fa" \
    --region chr2R:1-200000 --strand both -m "$models/10000nt/model_10000nt_rs10.pt" -f 10000 -o "$tmp/p$t"
done
for n in 10000 100000; do
  # shellcheck disable=SC2046
  measure "variant ${rss_flank}nt, $n records, 2 threads" "$n" env RAYON_NUM_THREADS=2 \
    $(variant_args "$rss_flank" "$tmp/v$n.vcf" "$tmp/o$n.vcf")
done
echo "CPU threads: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
