#!/usr/bin/env python3
"""Cut a small genome out of a big one, for tests and demos of the workflow.

usage: subset_genome.py FASTA[.gz] GFF3[.gz] OUT_PREFIX CONTIG:START-END [CONTIG:START-END ...]

Writes OUT_PREFIX.fa (one record per region, named after its contig, the region's bases) and OUT_PREFIX.gff3
(the genes lying wholly inside a region, with their transcripts and exons, shifted to the region's start).
Coordinates are 1-based and inclusive. Only the standard library is used.
"""
import gzip
import sys


def open_text(path):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rt") if magic == b"\x1f\x8b" else open(path)


def parse_region(text):
    contig, _, span = text.rpartition(":")
    start, _, end = span.partition("-")
    if not contig or not start.isdigit() or not end.isdigit() or int(start) < 1 or int(end) < int(start):
        sys.exit(f"subset_genome.py: bad region {text!r}: expected CONTIG:START-END (1-based, START <= END)")
    return contig, int(start), int(end)


def attributes(column):
    return dict(kv.split("=", 1) for kv in column.strip().split(";") if "=" in kv)


def main(argv):
    if len(argv) < 5:
        sys.exit(__doc__.strip())
    fasta, gff, prefix = argv[1:4]
    regions = dict()
    for text in argv[4:]:
        contig, start, end = parse_region(text)
        if contig in regions:
            sys.exit(f"subset_genome.py: contig {contig} given twice")
        regions[contig] = (start, end)

    seqs, name, parts = {}, None, []
    with open_text(fasta) as f:
        for line in f:
            if line.startswith(">"):
                if name in regions:
                    seqs[name] = "".join(parts)
                name, parts = line[1:].split()[0], []
            elif name in regions:
                parts.append(line.strip())
        if name in regions:
            seqs[name] = "".join(parts)
    with open(prefix + ".fa", "w") as out:
        for contig, (start, end) in regions.items():
            if contig not in seqs:
                sys.exit(f"subset_genome.py: {fasta} has no contig {contig}")
            seq = seqs[contig][start - 1 : end]
            out.write(f">{contig}\n")
            for i in range(0, len(seq), 60):
                out.write(seq[i : i + 60] + "\n")

    rows = []
    with open_text(gff) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) == 9 and cols[0] in regions:
                rows.append(cols)
    kept = set()  # IDs of genes inside a region, then of their descendants
    for cols in rows:
        start, end = regions[cols[0]]
        if cols[2] == "gene" and start <= int(cols[3]) and int(cols[4]) <= end:
            kept.add(attributes(cols[8]).get("ID"))
    grew = True
    while grew:  # children may come before their parents in a GFF3
        grew = False
        for cols in rows:
            attrs = attributes(cols[8])
            if attrs.get("ID") not in kept and any(p in kept for p in attrs.get("Parent", "").split(",")):
                kept.add(attrs.get("ID"))
                grew = True
    n_genes = 0
    with open(prefix + ".gff3", "w") as out:
        out.write("##gff-version 3\n")
        for cols in rows:
            attrs = attributes(cols[8])
            if attrs.get("ID") in kept or any(p in kept for p in attrs.get("Parent", "").split(",")):
                shift = regions[cols[0]][0] - 1
                cols = cols[:3] + [str(int(cols[3]) - shift), str(int(cols[4]) - shift)] + cols[5:]
                out.write("\t".join(cols) + "\n")
                n_genes += cols[2] == "gene"
    print(f"subset_genome.py: {prefix}.fa ({len(regions)} records), {prefix}.gff3 ({n_genes} genes)")


if __name__ == "__main__":
    main(sys.argv)
