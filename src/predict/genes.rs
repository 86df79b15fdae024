//! `predict -a`: the genes of a GFF3/GTF (type `gene`) cut from the FASTA with a flank each side,
//! reverse-complemented on the minus strand, named `{id} {seqid}:{start}-{end}({strand})` as
//! OpenSpliceAI's `process_gff` (the genes come from [`crate::genome::genes`]), then scored like FASTA records
//! (in GFF order).

use std::io::Write;
use std::path::Path;

use super::{output_err, PredictError, Scorer};
use crate::atomic::AtomicOutput;
use crate::genome::genes::GeneReader;
use crate::genome::seq::reverse_complement;
use crate::genome::IndexedFasta;

/// Scores every gene of `gff` and writes their sequences to `genes_fa` (upstream's `<stem>_genes.fa`).
pub(crate) fn score_genes(
    fasta: &Path,
    gff: &Path,
    flank: usize,
    genes_fa: &Path,
    scorer: &mut Scorer<'_>,
) -> Result<(), PredictError> {
    let mut genome = IndexedFasta::open(fasta)?;
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
        scorer.push_record(&format!("{header}:+"), &seq)?;
    }
    out.commit().map_err(output_err(genes_fa))?;
    Ok(())
}
