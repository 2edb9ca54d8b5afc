//! Fixed-size byte newtypes (hashes, keys, signatures) with one encoding policy:
//! lower-case hex for people and JSON, raw bytes for the binary codecs.

use std::fmt;

#[doc(hidden)]
pub use serde;

/// Why a hex string could not be turned into a fixed-size value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseBytesError {
    /// The string is not valid hexadecimal.
    #[error("not hexadecimal: {0}")]
    NotHex(String),
    /// The string decodes to the wrong number of bytes.
    #[error("expected {expected} bytes, found {found}")]
    WrongLength {
        /// Bytes the type holds.
        expected: usize,
        /// Bytes the input decoded to.
        found: usize,
    },
}

/// Lower-case hex of `bytes` (used by [`fixed_bytes!`]).
#[doc(hidden)]
pub fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Decodes `s` as hex into exactly `N` bytes.
#[doc(hidden)]
pub fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], ParseBytesError> {
    let bytes = hex::decode(s.trim()).map_err(|e| ParseBytesError::NotHex(e.to_string()))?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| ParseBytesError::WrongLength {
        expected: N,
        found: bytes.len(),
    })
}

/// Serde visitor accepting either a hex string (human-readable formats) or raw bytes.
#[doc(hidden)]
pub struct FixedBytesVisitor<const N: usize>;

impl<'de, const N: usize> serde::de::Visitor<'de> for FixedBytesVisitor<N> {
    type Value = [u8; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{N} bytes, or {} hex characters", 2 * N)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_hex(v).map_err(E::custom)
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        <[u8; N]>::try_from(v).map_err(|_| {
            E::custom(ParseBytesError::WrongLength {
                expected: N,
                found: v.len(),
            })
        })
    }
}

/// Declares a `Copy` newtype over `[u8; N]` with hex `Display`/`FromStr` and serde support.
#[macro_export]
macro_rules! fixed_bytes {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&$crate::bytes::to_hex(&self.0))
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::bytes::ParseBytesError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::bytes::parse_hex::<$len>(s).map(Self)
            }
        }

        impl $crate::bytes::serde::Serialize for $name {
            fn serialize<S: $crate::bytes::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&$crate::bytes::to_hex(&self.0))
                } else {
                    s.serialize_bytes(&self.0)
                }
            }
        }

        impl<'de> $crate::bytes::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::bytes::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let visitor = $crate::bytes::FixedBytesVisitor::<$len>;
                if d.is_human_readable() {
                    d.deserialize_str(visitor).map(Self)
                } else {
                    d.deserialize_bytes(visitor).map(Self)
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::fixed_bytes!(
        /// Test type.
        #[allow(unreachable_pub)]
        Four,
        4
    );

    #[test]
    fn hex_round_trip_and_errors() {
        let v: Four = "00ff10ab".parse().expect("valid hex");
        assert_eq!(v.to_string(), "00ff10ab");
        assert_eq!(
            "00ff".parse::<Four>(),
            Err(ParseBytesError::WrongLength {
                expected: 4,
                found: 2
            })
        );
        assert!(matches!(
            "zz".parse::<Four>(),
            Err(ParseBytesError::NotHex(_))
        ));
    }

    #[test]
    fn binary_and_json_round_trip() {
        let v = Four([1, 2, 3, 4]);
        let bin = postcard::to_stdvec(&v).expect("encode");
        assert_eq!(postcard::from_bytes::<Four>(&bin).expect("decode"), v);
        assert!(postcard::from_bytes::<Four>(&bin[..3]).is_err());
    }
}
