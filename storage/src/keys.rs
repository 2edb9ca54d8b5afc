//! BLS12-381 signing keys for block proposers (`blst`, min_pk: 48-byte public keys in G1,
//! 96-byte signatures in G2, proof-of-possession ciphersuite).

use blst::min_pk;
use blst::BLST_ERROR;

use nexus_das::fixed_bytes;

/// Ciphersuite tag of the proof-of-possession scheme for min_pk signatures.
const DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

fixed_bytes!(
    /// A compressed BLS public key.
    PublicKey,
    48
);

fixed_bytes!(
    /// A compressed BLS signature.
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

/// A BLS secret key that signs block headers.
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
        Signature(self.secret.sign(message, DST, &[]).compress())
    }
}

impl PublicKey {
    /// True when `signature` is this key's valid signature of `message`. Malformed keys or
    /// signatures (not on the curve, not in the subgroup) are simply invalid.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        let Ok(pk) = min_pk::PublicKey::key_validate(&self.0) else {
            return false;
        };
        let Ok(sig) = min_pk::Signature::from_bytes(&signature.0) else {
            return false;
        };
        sig.verify(true, message, DST, &[], &pk, false) == BLST_ERROR::BLST_SUCCESS
    }
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
}
