//! `merge`: joins the VCFs of a sharded `variant` run (`crate::variant::merge`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::clobber::Io;
use crate::genome::vcf_write::IndexKind;
use crate::variant::merge::{self, MergeOptions};

/// `merge`.
#[derive(Debug, Args, Clone)]
pub struct MergeArgs {
    /// The VCFs to join (plain or bgzipped), in genome order: shard 1 first.
    #[arg(required = true, value_name = "VCF")]
    pub inputs: Vec<PathBuf>,
    /// Output VCF [default: stdout]; a name ending in `.gz` or `.bgz` is written as BGZF with a tabix
    /// index beside it (`<name>.tbi`).
    #[arg(short = 'O', long = "output-vcf", value_name = "VCF")]
    pub output_vcf: Option<PathBuf>,
    /// Index a BGZF output with CSI (`<name>.csi`) instead of tabix: needed for contigs longer than
    /// 512 Mbp.
    #[arg(long)]
    pub csi: bool,
    /// Leave out the header's `##openspliceai-rs_mergeVersion=`/`Command=` lines.
    #[arg(long = "no-provenance")]
    pub no_provenance: bool,
}

/// The index kind `--csi` asks for.
pub fn index_kind(csi: bool) -> IndexKind {
    if csi {
        IndexKind::Csi
    } else {
        IndexKind::Tbi
    }
}

/// The words of the command line after the program's name, as typed (for the header's `…Command=` line).
pub fn command_words() -> Vec<String> {
    std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// Runs `merge`.
pub fn run(a: MergeArgs) -> Result<()> {
    let index = index_kind(a.csi);
    let outputs = merge::outputs(a.output_vcf.as_deref());
    outputs
        .iter()
        .fold(Io::new().inputs("VCF", &a.inputs), |io, o| {
            io.output("-O", o)
        })
        .check()?;
    let opts = MergeOptions {
        inputs: a.inputs,
        output: a.output_vcf,
        index,
        command_line: (!a.no_provenance).then(command_words),
    };
    let summary = merge::merge(&opts)?;
    eprintln!("{summary}");
    Ok(())
}
