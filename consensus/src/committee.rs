//! The validator committee of an epoch: keys with proven possession, stakes, addresses;
//! the > 2/3-of-stake quorum rule and the stake-weighted leader of each round.

use serde::{Deserialize, Serialize};

use crate::ids::{Epoch, Round};
use crate::keys::{PublicKey, Signature, SigningKey, ValidKey};
use nexus_das::merkle::Digest;

/// Most validators a committee may have (signer bitmaps stay under 128 bytes).
pub const MAX_VALIDATORS: usize = 1024;

/// One validator as registered: its key, the proof it holds the secret, its stake and how
/// to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validator {
    /// BLS key that signs votes, timeouts and proposals.
    pub key: PublicKey,
    /// Proof of possession of `key`'s secret.
    pub proof_of_possession: Signature,
    /// Voting power.
    pub stake: u64,
    /// Network address (a libp2p multiaddr with the peer id), opaque to consensus.
    pub address: String,
}

impl Validator {
    /// The registration of `key` with `stake`, reachable at `address`, with its proof of
    /// possession made here.
    pub fn new(key: &SigningKey, stake: u64, address: impl Into<String>) -> Validator {
        Validator {
            key: key.public(),
            proof_of_possession: key.proof_of_possession(),
            stake,
            address: address.into(),
        }
    }
}

/// Why a committee is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitteeError {
    /// No validators.
    #[error("a committee needs at least one validator")]
    Empty,
    /// Too many validators.
    #[error("{found} validators, at most {MAX_VALIDATORS} allowed")]
    TooLarge {
        /// How many were given.
        found: usize,
    },
    /// The same key twice.
    #[error("validator {0} is listed twice")]
    Duplicate(PublicKey),
    /// A validator without stake.
    #[error("validator {0} has no stake")]
    ZeroStake(PublicKey),
    /// The stakes add up past `u64::MAX`.
    #[error("total stake overflows")]
    StakeOverflow,
    /// A key that is not a valid BLS key, or whose proof of possession fails.
    #[error("validator {0}: invalid key or proof of possession")]
    BadPossession(PublicKey),
}

/// A checked committee: validators sorted by key bytes, every proof of possession valid.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "CommitteeRecord", into = "CommitteeRecord")]
pub struct Committee {
    epoch: Epoch,
    validators: Vec<Validator>,
    total: u64,
    /// Decompressed keys, in validator order.
    keys: Vec<ValidKey>,
}

/// The serialised form of a committee, checked on the way in.
#[derive(Clone, Serialize, Deserialize)]
struct CommitteeRecord {
    epoch: Epoch,
    validators: Vec<Validator>,
}

impl TryFrom<CommitteeRecord> for Committee {
    type Error = CommitteeError;
    fn try_from(r: CommitteeRecord) -> Result<Committee, CommitteeError> {
        Committee::new(r.epoch, r.validators)
    }
}

impl From<Committee> for CommitteeRecord {
    fn from(c: Committee) -> CommitteeRecord {
        CommitteeRecord {
            epoch: c.epoch,
            validators: c.validators,
        }
    }
}

impl PartialEq for Committee {
    fn eq(&self, other: &Committee) -> bool {
        self.epoch == other.epoch && self.validators == other.validators
    }
}

impl Eq for Committee {}

impl std::fmt::Debug for Committee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committee")
            .field("epoch", &self.epoch)
            .field("validators", &self.validators.len())
            .field("total", &self.total)
            .finish()
    }
}

impl Committee {
    /// Checks and orders `validators` (by key bytes) as the committee of `epoch`.
    pub fn new(epoch: Epoch, mut validators: Vec<Validator>) -> Result<Committee, CommitteeError> {
        if validators.is_empty() {
            return Err(CommitteeError::Empty);
        }
        if validators.len() > MAX_VALIDATORS {
            return Err(CommitteeError::TooLarge {
                found: validators.len(),
            });
        }
        validators.sort_by_key(|v| v.key);
        let mut total = 0u64;
        let mut keys = Vec::with_capacity(validators.len());
        for (i, v) in validators.iter().enumerate() {
            if i > 0 && validators[i - 1].key == v.key {
                return Err(CommitteeError::Duplicate(v.key));
            }
            if v.stake == 0 {
                return Err(CommitteeError::ZeroStake(v.key));
            }
            total = total
                .checked_add(v.stake)
                .ok_or(CommitteeError::StakeOverflow)?;
            if !v.key.verify_possession(&v.proof_of_possession) {
                return Err(CommitteeError::BadPossession(v.key));
            }
            keys.push(
                v.key
                    .validated()
                    .ok_or(CommitteeError::BadPossession(v.key))?,
            );
        }
        Ok(Committee {
            epoch,
            validators,
            total,
            keys,
        })
    }

    /// The epoch this committee serves.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The validators, sorted by key bytes (their index is their bit in signer bitmaps).
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// Number of validators.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Never true: a committee has at least one validator.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// Sum of all stakes.
    pub fn total_stake(&self) -> u64 {
        self.total
    }

    /// Index of `key` in the committee.
    pub fn index_of(&self, key: &PublicKey) -> Option<usize> {
        self.validators.binary_search_by(|v| v.key.cmp(key)).ok()
    }

    /// Stake of validator `index` (0 if out of range).
    pub fn stake(&self, index: usize) -> u64 {
        self.validators.get(index).map_or(0, |v| v.stake)
    }

    pub(crate) fn valid_key(&self, index: usize) -> Option<&ValidKey> {
        self.keys.get(index)
    }

    /// True when `stake` is more than two thirds of the total: a quorum.
    pub fn is_quorum(&self, stake: u64) -> bool {
        u128::from(stake) * 3 > u128::from(self.total) * 2
    }

    /// True when `stake` is more than one third of the total: at least one honest
    /// validator among them if at most a third is byzantine.
    pub fn exceeds_one_third(&self, stake: u64) -> bool {
        u128::from(stake) * 3 > u128::from(self.total)
    }

    /// The leader of `round`: a validator drawn with probability proportional to its stake
    /// by `SHA-256("nexus/leader/v1" ‖ epoch ‖ round)`, over validators in key order. Every
    /// node computes the same leader with no communication.
    pub fn leader(&self, round: Round) -> &Validator {
        let seed = Digest::of(&[
            b"nexus/leader/v1",
            &self.epoch.0.to_be_bytes(),
            &round.0.to_be_bytes(),
        ]);
        let mut wide = [0u8; 16];
        wide.copy_from_slice(&seed.0[..16]);
        let mut ticket = u128::from_be_bytes(wide) % u128::from(self.total);
        for v in &self.validators {
            let stake = u128::from(v.stake);
            if ticket < stake {
                return v;
            }
            ticket -= stake;
        }
        // The tickets cover exactly the total stake, so the loop always returns.
        &self.validators[self.validators.len() - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator(seed: u8, stake: u64) -> Validator {
        let key = SigningKey::from_seed(&[seed; 32]);
        Validator {
            key: key.public(),
            proof_of_possession: key.proof_of_possession(),
            stake,
            address: format!("v{seed}"),
        }
    }

    #[test]
    fn committee_checks_its_members() {
        assert_eq!(
            Committee::new(Epoch(0), vec![]).err(),
            Some(CommitteeError::Empty)
        );
        let v = validator(1, 10);
        assert_eq!(
            Committee::new(Epoch(0), vec![v.clone(), v.clone()]).err(),
            Some(CommitteeError::Duplicate(v.key))
        );
        assert_eq!(
            Committee::new(Epoch(0), vec![validator(2, 0)]).err(),
            Some(CommitteeError::ZeroStake(validator(2, 0).key))
        );
        let mut stolen = validator(3, 10);
        stolen.proof_of_possession = validator(4, 10).proof_of_possession;
        assert_eq!(
            Committee::new(Epoch(0), vec![stolen.clone()]).err(),
            Some(CommitteeError::BadPossession(stolen.key))
        );
        assert_eq!(
            Committee::new(Epoch(0), vec![validator(5, u64::MAX), validator(6, 1)]).err(),
            Some(CommitteeError::StakeOverflow)
        );
    }

    #[test]
    fn quorum_counts_stake_not_heads() {
        let c = Committee::new(
            Epoch(0),
            vec![
                validator(1, 1),
                validator(2, 1),
                validator(3, 1),
                validator(4, 7),
            ],
        )
        .expect("committee");
        assert_eq!(c.total_stake(), 10);
        assert!(
            !c.is_quorum(3),
            "three of four validators, 30% of the stake"
        );
        assert!(!c.is_quorum(6));
        assert!(c.is_quorum(7));
        assert!(c.exceeds_one_third(4));
        assert!(!c.exceeds_one_third(3));
    }

    #[test]
    fn leaders_follow_stake_and_round_trip() {
        let c = Committee::new(Epoch(0), vec![validator(1, 1), validator(2, 9)]).expect("c");
        let heavy = validator(2, 9).key;
        let led = (0..2000u64)
            .filter(|r| c.leader(Round(*r)).key == heavy)
            .count();
        assert!(
            (1650..1950).contains(&led),
            "heavy validator led {led} of 2000"
        );
        // Deterministic, and the encoding re-checks everything.
        let json = serde_json::to_string(&c).expect("json");
        let back: Committee = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, c);
        assert_eq!(back.leader(Round(5)).key, c.leader(Round(5)).key);
        let tampered = json.replacen("\"stake\":9", "\"stake\":0", 1);
        assert!(serde_json::from_str::<Committee>(&tampered).is_err());
    }
}
