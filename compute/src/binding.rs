//! The public value a Nexus guest reveals: one digest that binds the job's input and its
//! output, `SHA-256(SHA-256(input) ‖ SHA-256(output))` (computed inside the guest by
//! `guest/nexus_guest.c`). A proof of the program with this public value certifies that
//! the program, given exactly `input`, produced exactly `output`.

use sha2::{Digest, Sha256};

/// The 32-byte public value of a run that read `input` and committed `output`.
pub fn public_value(input: &[u8], output: &[u8]) -> [u8; 32] {
    public_value_of_digests(
        &Sha256::digest(input).into(),
        &Sha256::digest(output).into(),
    )
}

/// The public value from the SHA-256 digests of the input and of the output, for callers
/// that hashed large blobs while streaming them.
pub fn public_value_of_digests(input_digest: &[u8; 32], output_digest: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(input_digest);
    h.update(output_digest);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binding_changes_with_either_side_and_does_not_commute() {
        let base = public_value(b"input", b"output");
        assert_ne!(base, public_value(b"input!", b"output"));
        assert_ne!(base, public_value(b"input", b"output!"));
        assert_ne!(public_value(b"a", b"b"), public_value(b"b", b"a"));
        // Known answers, computed independently (Python's hashlib).
        assert_eq!(
            hex(&public_value(b"input", b"output")),
            "f0b1c8ae03b642481445a4b4306564ad6663ee7bf36d5fb70038d813aa3b8b2c"
        );
        assert_eq!(
            hex(&public_value(b"", b"")),
            "2dba5dbc339e7316aea2683faf839c1b7b1ee2313db792112588118df066aa35"
        );
    }

    fn hex(b: &[u8; 32]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
