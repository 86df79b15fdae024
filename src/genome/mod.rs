//! Genome sequences and annotations: a streaming FASTA reader and a GFF3/GTF feature store that follow the rules
//! of the Python libraries OpenSpliceAI uses (Biopython, gffutils), plain or gzip/bgzip-compressed.

pub mod annotation;
pub mod error;
pub mod fasta;
pub mod input;
pub mod seq;

pub use annotation::{Annotation, Feature, FeatureId};
pub use error::GenomeError;
pub use fasta::FastaReader;
pub use input::{open_text, Input};
