//! Human byte sizes on the command line: `500GiB`, `64MiB`, `1.5GB`, `4096`.

use std::fmt;
use std::str::FromStr;

/// A number of bytes parsed from a human-friendly string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteSize(pub(crate) u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "kib" => 1 << 10,
            "m" | "mb" => 1_000_000,
            "mib" => 1 << 20,
            "g" | "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            "t" | "tb" => 1_000_000_000_000,
            "tib" => 1 << 40,
            other => {
                return Err(format!(
                    "unknown size unit {other:?} (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
                ))
            }
        };
        let number: f64 = number
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a size such as 500GiB or 1048576"))?;
        if !number.is_finite() || number < 0.0 {
            return Err(format!("{s:?} is not a positive size"));
        }
        let bytes = number * multiplier as f64;
        if bytes > u64::MAX as f64 {
            return Err(format!("{s:?} is too large"));
        }
        Ok(ByteSize(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        match self.0 {
            n if n >= 1 << 30 => write!(f, "{:.2} GiB", b / (1u64 << 30) as f64),
            n if n >= 1 << 20 => write!(f, "{:.1} MiB", b / (1u64 << 20) as f64),
            n if n >= 1 << 10 => write!(f, "{:.1} KiB", b / 1024.0),
            n => write!(f, "{n} B"),
        }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_rejects_nonsense() {
        assert_eq!("500GiB".parse(), Ok(ByteSize(500 << 30)));
        assert_eq!("64 MiB".parse(), Ok(ByteSize(64 << 20)));
        assert_eq!("1.5GB".parse(), Ok(ByteSize(1_500_000_000)));
        assert_eq!("4096".parse(), Ok(ByteSize(4096)));
        for bad in ["", "GiB", "12XB", "-1GiB", "1e400", "nan"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
        assert_eq!(ByteSize(3 << 20).to_string(), "3.0 MiB");
    }
}
