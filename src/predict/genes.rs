//! `predict -a`: the genes of a GFF3/GTF (type `gene`) cut from the FASTA with a flank each side,
//! reverse-complemented on the minus strand, named `{id} {seqid}:{start}-{end}({strand})` as
//! OpenSpliceAI's `process_gff` (the genes come from [`crate::genome::genes`]), then scored like FASTA records
//! (in GFF order).

use std::io::Write;
use std::path::Path;

use super::bed::{bed_name, Place};
use super::bigwig::Chrom;
use super::{output_err, PredictError, RecordIn, Scorer};
use crate::atomic::AtomicOutput;
use crate::genome::genes::GeneReader;
use crate::genome::seq::reverse_complement;
use crate::genome::IndexedFasta;

/// Scores every gene of `gff` and writes their sequences to `genes_fa` (upstream's `<stem>_genes.fa`).
/// With regions (the scorer's), only the genes whose scored span (flank included) overlaps one; `genome`
/// is `fasta` already opened, or `None` to open it here.
pub(crate) fn score_genes(
    genome: Option<IndexedFasta>,
    fasta: &Path,
    gff: &Path,
    flank: usize,
    genes_fa: &Path,
    both_strands: bool,
    scorer: &mut Scorer<'_>,
) -> Result<(), PredictError> {
    let mut genome = match genome {
        Some(g) => g,
        None => IndexedFasta::open(fasta)?,
    };
    let mut genes = GeneReader::open(gff)?;
    let mut out = AtomicOutput::create(genes_fa).map_err(output_err(genes_fa))?;
    while let Some(g) = genes.next_gene()? {
        let Some(len) = genome.len(&g.seqid) else {
            log::warn!(
                "{}:{}: gene {} is on `{}`, which {} lacks: skipped",
                gff.display(),
                g.line,
                g.id,
                g.seqid,
                fasta.display()
            );
            scorer.summary.skipped_genes += 1;
            continue;
        };
        let start = g.start.saturating_sub(flank as u64).max(1);
        let end = (g.end + flank as u64).min(len);
        if !scorer.regions.overlaps(&g.seqid, start, end) {
            continue;
        }
        let mut seq = genome.fetch(&g.seqid, start - 1, end)?;
        if g.strand == "-" {
            reverse_complement(&mut seq);
        }
        let header = format!("{} {}:{start}-{end}({})", g.id, g.seqid, g.strand);
        writeln!(out, ">{header}").map_err(output_err(genes_fa))?;
        out.write_all(&seq).map_err(output_err(genes_fa))?;
        writeln!(out).map_err(output_err(genes_fa))?;
        // Upstream writes the file's case and upper-cases when it reads the genes back.
        seq.make_ascii_uppercase();
        let name = format!("{header}:+");
        // Upstream drops genes of strand `.`; the standard format does too.
        let minus = match g.strand.as_str() {
            "+" => Some(false),
            "-" => Some(true),
            _ => None,
        };
        let place = |minus| Place {
            chrom: Chrom(g.seqid.as_str().into()),
            start0: start - 1,
            len: end - start + 1,
            minus,
            prefix: bed_name(&g.id),
        };
        scorer.push_record(RecordIn {
            name: &name,
            seq: &seq,
            place: minus.map(place),
            from_end: false,
            reverse_copy: false,
        })?;
        if let (true, Some(m)) = (both_strands, minus) {
            reverse_complement(&mut seq);
            scorer.push_record(RecordIn {
                name: &format!("{header}:-"),
                seq: &seq,
                place: Some(place(!m)),
                from_end: false,
                reverse_copy: true,
            })?;
        }
    }
    out.commit().map_err(output_err(genes_fa))?;
    Ok(())
}
