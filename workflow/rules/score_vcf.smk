# score_vcf: one bgzipped, indexed VCF -> N shards scored by `variant` -> one merged, indexed .vcf.gz.
#
# Shards (config score_vcf.shards):
#   an integer N   `variant --shard I/N` for I = 1..N: contiguous runs of records, balanced by record count;
#                  the shards' records, concatenated in shard order, are the unsharded run's records
#   "contigs"      one shard per contig that has records (the names in the VCF's .tbi/.csi index, in the
#                  index's order): `variant --region CONTIG`
# `openspliceai-rs merge` concatenates the shards in order into OUT/score_vcf/<name>.vcf.gz with its .tbi.
import gzip
import struct

SV = config.get("score_vcf") or {}


def sv(key, default=None):
    value = SV.get(key, default)
    if value is None:
        raise WorkflowError(f"config score_vcf.{key} is missing (workflow/config/config.yaml shows every key)")
    return value


def sv_name():
    """The merged output's name: the input VCF's name without .vcf.gz."""
    base = os.path.basename(sv("vcf"))
    for suffix in (".gz", ".bgz", ".vcf"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base


def index_contigs(vcf):
    """The contig names of VCF's tabix (.tbi) or CSI (.csi) index, in the index's order."""
    for path in (vcf + ".tbi", vcf + ".csi"):
        if os.path.exists(path):
            break
    else:
        raise WorkflowError(
            f"score_vcf.shards: contigs needs the index of {vcf} ({vcf}.tbi or {vcf}.csi; `tabix -p vcf {vcf}`)"
        )
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
        if data[:4] == b"TBI\x01":
            (l_nm,) = struct.unpack_from("<i", data, 32)
            names = data[36 : 36 + l_nm]
        elif data[:4] == b"CSI\x01":
            (l_aux,) = struct.unpack_from("<i", data, 12)
            if l_aux < 28:
                raise ValueError("a CSI index without tabix's contig names")
            (l_nm,) = struct.unpack_from("<i", data, 16 + 24)
            names = data[16 + 28 : 16 + 28 + l_nm]
        else:
            raise ValueError("neither a tabix nor a CSI index")
    except (OSError, ValueError, struct.error) as e:
        raise WorkflowError(f"{path}: cannot read the contig names: {e}")
    return [n.decode() for n in names.split(b"\0") if n]


def sv_shards():
    """[(kind, I, N, variant's selection flags)] for the configured sharding (kind: shard or contig, the
    start of the shard's file name, so that the two ways never share a file)."""
    shards = sv("shards", 1)
    if str(shards) == "contigs":
        contigs = index_contigs(sv("vcf"))
        if not contigs:
            raise WorkflowError(f"{sv('vcf')}: its index lists no contig")
        n = len(contigs)
        return [("contig", i + 1, n, f"--region {shlex.quote(c)}") for i, c in enumerate(contigs)]
    try:
        n = int(shards)
        if n < 1:
            raise ValueError
    except ValueError:
        raise WorkflowError(f"config score_vcf.shards: {shards!r} is neither a count >= 1 nor `contigs`")
    return [("shard", i, n, f"--shard {i}/{n}") for i in range(1, n + 1)]


def sv_selection(wildcards):
    for kind, i, n, flags in sv_shards():
        if (kind, i, n) == (wildcards.kind, int(wildcards.i), int(wildcards.n)):
            return flags
    raise WorkflowError(f"no {wildcards.kind} {wildcards.i}/{wildcards.n} in this configuration")


def sv_models():
    models = sv("models")
    return [models] if isinstance(models, str) else list(models)


def sv_flags():
    """The scoring flags every shard shares."""
    flags = [f"-R {shlex.quote(sv('reference'))}", f"-A {shlex.quote(sv('annotation'))}"]
    flags += [f"-m {shlex.quote(m)}" for m in sv_models()]
    if SV.get("flanking_size"):
        flags.append(f"-f {int(SV['flanking_size'])}")
    flags += [f"-D {int(SV.get('distance', 50))}", f"-M {int(SV.get('mask', 0))}", f"--device {DEVICE}"]
    if SV.get("extra"):
        flags.append(str(SV["extra"]))
    return " ".join(flags)


def sv_shard_files(wildcards=None):
    return [f"{OUT}/score_vcf/shards/{kind}_{i}_of_{n}.vcf.gz" for kind, i, n, _ in sv_shards()]


rule score_vcf:
    input:
        lambda wc: f"{OUT}/score_vcf/{sv_name()}.vcf.gz",
        lambda wc: f"{OUT}/score_vcf/{sv_name()}.vcf.gz.tbi",


rule variant_shard:
    input:
        vcf=lambda wc: sv("vcf"),
        reference=lambda wc: sv("reference"),
        annotation=lambda wc: sv("annotation"),
        models=lambda wc: sv_models(),
    output:
        vcf=f"{OUT}/score_vcf/shards/{{kind}}_{{i}}_of_{{n}}.vcf.gz",
        tbi=f"{OUT}/score_vcf/shards/{{kind}}_{{i}}_of_{{n}}.vcf.gz.tbi",
    wildcard_constraints:
        kind="shard|contig",
        i=r"\d+",
        n=r"\d+",
    params:
        selection=sv_selection,
        flags=lambda wc: sv_flags(),
    log:
        f"{OUT}/logs/score_vcf/{{kind}}_{{i}}_of_{{n}}.log",
    threads: res("score", "threads")
    resources:
        mem_mb=res("score", "mem_mb"),
        runtime=res("score", "runtime"),
        gpu=GPUS,
    shell:
        "RAYON_NUM_THREADS={threads} {BIN} variant -I {input.vcf:q} {params.selection} {params.flags}"
        " -O {output.vcf:q} > {log:q} 2>&1"


rule merge_shards:
    input:
        sv_shard_files,
    output:
        vcf=f"{OUT}/score_vcf/{{name}}.vcf.gz",
        tbi=f"{OUT}/score_vcf/{{name}}.vcf.gz.tbi",
    wildcard_constraints:
        name=r"[^/]+",
    log:
        f"{OUT}/logs/score_vcf/{{name}}.merge.log",
    threads: res("merge", "threads")
    resources:
        mem_mb=res("merge", "mem_mb"),
        runtime=res("merge", "runtime"),
    shell:
        "{BIN} merge -O {output.vcf:q} {input:q} > {log:q} 2>&1"
