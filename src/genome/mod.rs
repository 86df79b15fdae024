//! Genome sequences and annotations: a streaming FASTA reader and a GFF3/GTF feature store that follow the rules
//! of the Python libraries OpenSpliceAI uses (Biopython, gffutils), plain or gzip/bgzip-compressed.

pub mod annotation;
pub mod error;
pub mod fasta;
pub mod gene_table;
pub mod genes;
pub mod gff;
pub mod input;
pub mod region;
pub mod seq;
pub mod vcf;
pub mod vcf_index;
pub mod vcf_write;

pub use annotation::{Annotation, Feature, FeatureId};
pub use error::GenomeError;
pub use fasta::{Dialect, FastaReader, FastaRecord, IndexedFasta};
pub use gff::Format;
pub use input::{open_text, Input};
pub use region::{Region, RegionError, Regions, Shard};
