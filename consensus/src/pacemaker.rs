//! Round timing: how long a round may last before validators give up on it, growing
//! exponentially with the rounds that passed without a certificate.

use serde::{Deserialize, Serialize};

use crate::ids::Round;

/// Timing parameters of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacemakerConfig {
    /// How long a round lasts when the previous one was certified, in milliseconds.
    pub round_timeout_ms: u64,
    /// The longest a round may last, however many failed before it.
    pub max_round_timeout_ms: u64,
    /// A leader proposes no sooner than this after its parent's timestamp (0: at once).
    pub min_block_interval_ms: u64,
}

impl Default for PacemakerConfig {
    fn default() -> Self {
        PacemakerConfig {
            round_timeout_ms: 1_000,
            max_round_timeout_ms: 60_000,
            min_block_interval_ms: 0,
        }
    }
}

impl PacemakerConfig {
    /// The duration of `round` when the highest certified round is `high_qc`: the base
    /// timeout times 1.5 for every round since without a certificate, capped.
    pub fn round_duration(&self, round: Round, high_qc: Round) -> u64 {
        let failed = round.0.saturating_sub(high_qc.0).saturating_sub(1).min(24);
        let mut ms = self.round_timeout_ms.max(1);
        for _ in 0..failed {
            ms = ms.saturating_add(ms / 2);
            if ms >= self.max_round_timeout_ms {
                break;
            }
        }
        ms.min(self.max_round_timeout_ms.max(self.round_timeout_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let c = PacemakerConfig {
            round_timeout_ms: 100,
            max_round_timeout_ms: 400,
            min_block_interval_ms: 0,
        };
        assert_eq!(c.round_duration(Round(5), Round(4)), 100);
        assert_eq!(c.round_duration(Round(6), Round(4)), 150);
        assert_eq!(c.round_duration(Round(7), Round(4)), 225);
        assert_eq!(c.round_duration(Round(50), Round(4)), 400);
        assert_eq!(c.round_duration(Round(3), Round(4)), 100);
    }
}
