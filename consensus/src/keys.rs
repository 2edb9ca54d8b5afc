//! BLS12-381 keys of validators, block producers and accounts (`blst`, min_pk: 48-byte
//! public keys in G1, 96-byte signatures in G2, proof-of-possession ciphersuite), and the
//! aggregation a quorum certificate needs.
//!
//! Aggregating signatures over one message is only safe when every key proved possession
//! of its secret (rogue-key attacks); [`crate::Committee`] checks each validator's proof of
//! possession when it is built, so certificates verify against its keys with the fast
//! same-message check.

use blst::min_pk;
use blst::BLST_ERROR;

use nexus_das::fixed_bytes;

/// Ciphersuite tag of signatures (proof-of-possession scheme, min_pk).
const SIGNATURE_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// Ciphersuite tag of proofs of possession (a signature of the key's own bytes).
const POP_DST: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

fixed_bytes!(
    /// A compressed BLS public key.
    PublicKey,
    48
);

fixed_bytes!(
    /// A compressed BLS signature (one signer's, or an aggregate).
    Signature,
    96
);

/// Why a key could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The 32 bytes are not a valid BLS secret scalar.
    #[error("invalid BLS secret key")]
    InvalidSecret,
}

/// A BLS secret key.
pub struct SigningKey {
    secret: min_pk::SecretKey,
    public: PublicKey,
}

impl SigningKey {
    /// Derives a key from 32 bytes of secret seed material (EIP-2333 `KeyGen`).
    pub fn from_seed(seed: &[u8; 32]) -> SigningKey {
        // key_gen fails only for seeds shorter than 32 bytes, which the type rules out.
        let secret = min_pk::SecretKey::key_gen(seed, &[]).unwrap_or_else(|_| unreachable!());
        Self::from_secret(secret)
    }

    /// Loads a key from its 32-byte serialisation.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<SigningKey, KeyError> {
        let secret = min_pk::SecretKey::from_bytes(bytes).map_err(|_| KeyError::InvalidSecret)?;
        Ok(Self::from_secret(secret))
    }

    fn from_secret(secret: min_pk::SecretKey) -> SigningKey {
        let public = PublicKey(secret.sk_to_pk().compress());
        SigningKey { secret, public }
    }

    /// The 32-byte serialisation, for the key file.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.secret.sign(message, SIGNATURE_DST, &[]).compress())
    }

    /// Proof that whoever registers this key holds its secret: a signature of the public
    /// key's bytes under the proof-of-possession tag.
    pub fn proof_of_possession(&self) -> Signature {
        Signature(self.secret.sign(&self.public.0, POP_DST, &[]).compress())
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public)
    }
}

/// A public key decompressed and checked to lie in the subgroup, ready for repeated use.
#[derive(Clone)]
pub(crate) struct ValidKey(min_pk::PublicKey);

impl PublicKey {
    /// Decompresses and group-checks the key; `None` if it is not a valid key.
    pub(crate) fn validated(&self) -> Option<ValidKey> {
        min_pk::PublicKey::key_validate(&self.0).ok().map(ValidKey)
    }

    /// True when `signature` is this key's valid signature of `message`. Malformed keys or
    /// signatures (not on the curve, not in the subgroup) are simply invalid.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        self.validated()
            .is_some_and(|k| k.verify(message, signature))
    }

    /// True when `signature` is the sum of this key's signatures of each of `messages`,
    /// which the caller makes distinct (so that the check is sound without a proof of
    /// possession). One Miller loop per message, one final exponentiation.
    pub fn verify_aggregate(&self, messages: &[&[u8]], signature: &Signature) -> bool {
        let Some(key) = self.validated() else {
            return false;
        };
        let Ok(sig) = min_pk::Signature::from_bytes(&signature.0) else {
            return false;
        };
        if messages.is_empty() {
            return false;
        }
        let keys = vec![&key.0; messages.len()];
        sig.aggregate_verify(true, messages, SIGNATURE_DST, &keys, false)
            == BLST_ERROR::BLST_SUCCESS
    }

    /// True when `proof` is this key's proof of possession.
    pub fn verify_possession(&self, proof: &Signature) -> bool {
        let Some(key) = self.validated() else {
            return false;
        };
        let Ok(sig) = min_pk::Signature::from_bytes(&proof.0) else {
            return false;
        };
        sig.verify(true, &self.0, POP_DST, &[], &key.0, false) == BLST_ERROR::BLST_SUCCESS
    }
}

impl ValidKey {
    /// True when `signature` is this key's valid signature of `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        let Ok(sig) = min_pk::Signature::from_bytes(&signature.0) else {
            return false;
        };
        sig.verify(true, message, SIGNATURE_DST, &[], &self.0, false) == BLST_ERROR::BLST_SUCCESS
    }
}

/// Adds signatures up into one; `None` if there are none or one is malformed. Whoever
/// aggregates checked each signature first.
pub fn aggregate<'a>(signatures: impl IntoIterator<Item = &'a Signature>) -> Option<Signature> {
    let parsed = signatures
        .into_iter()
        .map(|s| min_pk::Signature::from_bytes(&s.0).ok())
        .collect::<Option<Vec<_>>>()?;
    let refs: Vec<&min_pk::Signature> = parsed.iter().collect();
    // Each signature was verified (and so group-checked) before it was counted.
    let aggregate = min_pk::AggregateSignature::aggregate(&refs, false).ok()?;
    Some(Signature(aggregate.to_signature().compress()))
}

/// True when `signature` aggregates signatures of `message` by exactly `keys` (which must
/// have proven possession).
pub(crate) fn verify_aggregate_same(
    keys: &[&ValidKey],
    message: &[u8],
    signature: &Signature,
) -> bool {
    if keys.is_empty() {
        return false;
    }
    let Ok(sig) = min_pk::Signature::from_bytes(&signature.0) else {
        return false;
    };
    let keys: Vec<&min_pk::PublicKey> = keys.iter().map(|k| &k.0).collect();
    sig.fast_aggregate_verify(true, message, SIGNATURE_DST, &keys) == BLST_ERROR::BLST_SUCCESS
}

/// True when every `signatures[i]` is `keys[i]`'s signature of `message`, checked all at
/// once: each signature and key is weighted by a 64-bit factor derived from all of the
/// signatures (so invalid ones cannot cancel out), then one pairing check is made on the
/// sums. Costs one hash to the curve and one pairing check instead of one of each per
/// signature.
pub(crate) fn verify_batch_same(
    keys: &[&ValidKey],
    message: &[u8],
    signatures: &[Signature],
) -> bool {
    if keys.is_empty() || keys.len() != signatures.len() {
        return false;
    }
    let Some(parsed) = signatures
        .iter()
        .map(|s| min_pk::Signature::from_bytes(&s.0).ok())
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    let mut seed = Vec::with_capacity(96 * signatures.len() + message.len());
    for s in signatures {
        seed.extend_from_slice(&s.0);
    }
    seed.extend_from_slice(message);
    let mut factors = Vec::with_capacity(8 * signatures.len());
    for i in 0..signatures.len() as u64 {
        let digest = nexus_das::merkle::Digest::of(&[b"nexus/batch/v1", &seed, &i.to_be_bytes()]);
        let mut factor = [0u8; 8];
        factor.copy_from_slice(&digest.0[..8]);
        // A zero factor would drop its signature from the check.
        factor[0] |= 1;
        factors.extend_from_slice(&factor);
    }
    let keys: Vec<min_pk::PublicKey> = keys.iter().map(|k| k.0).collect();
    let (Ok(sum_sig), Ok(sum_key)) = (
        min_pk::AggregateSignature::aggregate_with_randomness(&parsed, &factors, 64, true),
        min_pk::AggregatePublicKey::aggregate_with_randomness(&keys, &factors, 64, false),
    ) else {
        return false;
    };
    sum_sig.to_signature().verify(
        false,
        message,
        SIGNATURE_DST,
        &[],
        &sum_key.to_public_key(),
        false,
    ) == BLST_ERROR::BLST_SUCCESS
}

/// True when `signature` aggregates, for each group, signatures of the group's message by
/// every key of the group (keys must have proven possession). Keys of one group are added
/// up first, so the pairings needed are one per distinct message, not one per signer.
pub(crate) fn verify_aggregate_grouped(
    groups: &[(Vec<&ValidKey>, Vec<u8>)],
    signature: &Signature,
) -> bool {
    if groups.is_empty() || groups.iter().any(|(keys, _)| keys.is_empty()) {
        return false;
    }
    let Ok(sig) = min_pk::Signature::from_bytes(&signature.0) else {
        return false;
    };
    let mut summed = Vec::with_capacity(groups.len());
    for (keys, _) in groups {
        let keys: Vec<&min_pk::PublicKey> = keys.iter().map(|k| &k.0).collect();
        match min_pk::AggregatePublicKey::aggregate(&keys, false) {
            Ok(sum) => summed.push(sum.to_public_key()),
            Err(_) => return false,
        }
    }
    let keys: Vec<&min_pk::PublicKey> = summed.iter().collect();
    let messages: Vec<&[u8]> = groups.iter().map(|(_, m)| m.as_slice()).collect();
    sig.aggregate_verify(true, &messages, SIGNATURE_DST, &keys, false) == BLST_ERROR::BLST_SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_reject() {
        let key = SigningKey::from_seed(&[7; 32]);
        let sig = key.sign(b"header");
        assert!(key.public().verify(b"header", &sig));
        assert!(!key.public().verify(b"headex", &sig));
        let other = SigningKey::from_seed(&[8; 32]);
        assert!(!other.public().verify(b"header", &sig));
        let mut bad = sig;
        bad.0[10] ^= 1;
        assert!(!key.public().verify(b"header", &bad));
        assert!(!PublicKey([0; 48]).verify(b"header", &sig));
    }

    #[test]
    fn key_round_trips_through_bytes() {
        let key = SigningKey::from_seed(&[1; 32]);
        let again = SigningKey::from_bytes(&key.to_bytes()).expect("valid");
        assert_eq!(again.public(), key.public());
        assert_eq!(
            SigningKey::from_bytes(&[0xff; 32]).err(),
            Some(KeyError::InvalidSecret)
        );
    }

    #[test]
    fn proof_of_possession_binds_the_key_and_is_not_a_signature() {
        let key = SigningKey::from_seed(&[3; 32]);
        let pop = key.proof_of_possession();
        assert!(key.public().verify_possession(&pop));
        let other = SigningKey::from_seed(&[4; 32]);
        assert!(!other.public().verify_possession(&pop));
        // The same bytes signed as a message do not pass as a proof, nor the reverse.
        let plain = key.sign(&key.public().0);
        assert!(!key.public().verify_possession(&plain));
        assert!(!key.public().verify(&key.public().0, &pop));
    }

    #[test]
    fn aggregates_verify_only_with_their_signers_and_messages() {
        let keys: Vec<SigningKey> = (0..4u8).map(|i| SigningKey::from_seed(&[i; 32])).collect();
        let valid: Vec<ValidKey> = keys
            .iter()
            .map(|k| k.public().validated().expect("valid"))
            .collect();
        let sigs: Vec<Signature> = keys.iter().map(|k| k.sign(b"m")).collect();
        let agg = aggregate(&sigs[..3]).expect("aggregate");
        let three: Vec<&ValidKey> = valid[..3].iter().collect();
        assert!(verify_aggregate_same(&three, b"m", &agg));
        assert!(!verify_aggregate_same(&three, b"n", &agg));
        let wrong: Vec<&ValidKey> = valid[1..].iter().collect();
        assert!(!verify_aggregate_same(&wrong, b"m", &agg));
        assert!(!verify_aggregate_same(&[], b"m", &agg));

        let distinct = aggregate(&[keys[0].sign(b"a"), keys[1].sign(b"b"), keys[2].sign(b"b")])
            .expect("aggregate");
        fn groups<'a>(
            a: Vec<&'a ValidKey>,
            b: Vec<&'a ValidKey>,
        ) -> Vec<(Vec<&'a ValidKey>, Vec<u8>)> {
            vec![(a, b"a".to_vec()), (b, b"b".to_vec())]
        }
        assert!(verify_aggregate_grouped(
            &groups(vec![&valid[0]], vec![&valid[1], &valid[2]]),
            &distinct
        ));
        assert!(!verify_aggregate_grouped(
            &groups(vec![&valid[1]], vec![&valid[0], &valid[2]]),
            &distinct
        ));
        assert!(!verify_aggregate_grouped(
            &groups(vec![&valid[0]], vec![&valid[1]]),
            &distinct
        ));
        assert!(aggregate(&[Signature([0; 96])]).is_none());

        // A batch passes only when every signature does, even if errors would cancel.
        let three: Vec<&ValidKey> = valid[..3].iter().collect();
        assert!(verify_batch_same(&three, b"m", &sigs[..3]));
        assert!(!verify_batch_same(&three, b"n", &sigs[..3]));
        let swapped = [sigs[1], sigs[0], sigs[2]];
        assert!(!verify_batch_same(&three, b"m", &swapped));
        // Swapped between signers, every signature is wrong but the plain sum is the
        // same: an unweighted aggregate check is fooled, the batch is not.
        let plain_sum = aggregate(&swapped).expect("sum");
        assert!(
            verify_aggregate_same(&three, b"m", &plain_sum),
            "a plain sum is fooled"
        );
    }
}
