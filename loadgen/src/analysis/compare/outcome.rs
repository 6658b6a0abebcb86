//! The four outcomes a comparison can reach.

use serde::Serialize;

/// What the evidence says about a change, against the band ±threshold around "no change".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The whole interval lies beyond the band, in the good direction.
    Better,
    /// The whole interval lies beyond the band, in the bad direction.
    Worse,
    /// The whole interval lies inside the band: any change is smaller than the threshold.
    Same,
    /// Neither: the data cannot tell (more repeats would).
    Inconclusive,
}

impl Outcome {
    /// The word printed in the verdict column.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Better => "better",
            Outcome::Worse => "worse",
            Outcome::Same => "same",
            Outcome::Inconclusive => "inconclusive",
        }
    }
}
