//! The one table of SpliceAI configurations (docs/upstream-behaviour.md#model): kernel widths W, dilations AR and the
//! default batch size for each flanking size. Everything else asks this module.

use std::fmt;

/// Channels of every hidden layer (L in the SpliceAI paper).
pub const CHANNELS: usize = 32;
/// Output positions per window.
pub const SEQ_LEN: usize = 5000;
/// Input channels (one-hot A, C, G, T).
pub const IN_CHANNELS: usize = 4;
/// Output classes (non-splice, acceptor, donor).
pub const OUT_CLASSES: usize = 3;
/// ResidualUnits between two Skip connections.
pub const UNITS_PER_SKIP: usize = 4;

/// One row of the flanking table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlankConfig {
    /// Flanking context CL (nucleotides, both sides together).
    pub flank: usize,
    /// Kernel width W of each ResidualUnit.
    pub kernel_sizes: &'static [usize],
    /// Dilation AR of each ResidualUnit.
    pub dilations: &'static [usize],
    /// Default batch size (OpenSpliceAI's).
    pub batch_size: usize,
}

const W80: [usize; 4] = [11; 4];
const AR80: [usize; 4] = [1; 4];
const W400: [usize; 8] = [11; 8];
const AR400: [usize; 8] = [1, 1, 1, 1, 4, 4, 4, 4];
const W2000: [usize; 12] = [11, 11, 11, 11, 11, 11, 11, 11, 21, 21, 21, 21];
const AR2000: [usize; 12] = [1, 1, 1, 1, 4, 4, 4, 4, 10, 10, 10, 10];
const W10000: [usize; 16] = [
    11, 11, 11, 11, 11, 11, 11, 11, 21, 21, 21, 21, 41, 41, 41, 41,
];
const AR10000: [usize; 16] = [1, 1, 1, 1, 4, 4, 4, 4, 10, 10, 10, 10, 25, 25, 25, 25];

/// The four supported configurations.
pub const CONFIGS: [FlankConfig; 4] = [
    FlankConfig {
        flank: 80,
        kernel_sizes: &W80,
        dilations: &AR80,
        batch_size: 36,
    },
    FlankConfig {
        flank: 400,
        kernel_sizes: &W400,
        dilations: &AR400,
        batch_size: 36,
    },
    FlankConfig {
        flank: 2000,
        kernel_sizes: &W2000,
        dilations: &AR2000,
        batch_size: 24,
    },
    FlankConfig {
        flank: 10000,
        kernel_sizes: &W10000,
        dilations: &AR10000,
        batch_size: 12,
    },
];

/// A flanking size that is not one of 80, 400, 2000, 10000.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unsupported flanking size {0}: expected one of 80, 400, 2000, 10000")]
pub struct UnsupportedFlank(pub usize);

impl FlankConfig {
    /// The configuration for a flanking size.
    pub fn for_flank(flank: usize) -> Result<&'static FlankConfig, UnsupportedFlank> {
        CONFIGS
            .iter()
            .find(|c| c.flank == flank)
            .ok_or(UnsupportedFlank(flank))
    }

    /// The configuration with this many ResidualUnits (used to infer the flanking size of a checkpoint).
    pub fn for_unit_count(units: usize) -> Option<&'static FlankConfig> {
        CONFIGS.iter().find(|c| c.kernel_sizes.len() == units)
    }

    /// Number of ResidualUnits.
    pub fn n_units(&self) -> usize {
        self.kernel_sizes.len()
    }

    /// Input length of a window: 5000 + CL.
    pub fn input_len(&self) -> usize {
        SEQ_LEN + self.flank
    }

    /// The index in [`layout`](Self::layout) of the `unit`-th ResidualUnit: the units before it plus the
    /// Skips after every [`UNITS_PER_SKIP`]-th of them.
    pub fn block_index_of_unit(unit: usize) -> usize {
        unit + unit / UNITS_PER_SKIP
    }

    /// The `residual_units` list in PyTorch order: a unit per (W, AR) and a Skip after every 4th unit.
    pub fn layout(&self) -> Vec<BlockSpec> {
        let mut out = Vec::with_capacity(self.n_units() + self.n_units() / UNITS_PER_SKIP);
        for (i, (&k, &d)) in self.kernel_sizes.iter().zip(self.dilations).enumerate() {
            out.push(BlockSpec::Unit {
                unit: i,
                kernel: k,
                dilation: d,
            });
            if (i + 1) % UNITS_PER_SKIP == 0 {
                out.push(BlockSpec::Skip);
            }
        }
        out
    }
}

impl fmt::Display for FlankConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SpliceAI-{} ({} residual units, batch size {})",
            self.flank,
            self.n_units(),
            self.batch_size
        )
    }
}

/// One entry of the `residual_units` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockSpec {
    /// The `unit`-th ResidualUnit (counting units only) with kernel width and dilation.
    Unit {
        unit: usize,
        kernel: usize,
        dilation: usize,
    },
    /// A 1×1 skip convolution added to the skip accumulator.
    Skip,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_index_of_unit_agrees_with_the_layout() {
        for cfg in CONFIGS {
            for (index, block) in cfg.layout().iter().enumerate() {
                if let BlockSpec::Unit { unit, .. } = block {
                    assert_eq!(
                        FlankConfig::block_index_of_unit(*unit),
                        index,
                        "SpliceAI-{}: unit {unit}",
                        cfg.flank
                    );
                }
            }
        }
    }
}
