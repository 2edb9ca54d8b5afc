//! What a proof of a Nexus guest states, beyond "this program ran to completion": its one
//! 32-byte public value
//!
//! ```text
//! SHA-256( beneficiary ‖ BlobId(input) ‖ BlobId(output) )
//! ```
//!
//! computed inside the guest by the runtime (`guest/nexus_guest.c`). The input and output
//! are named by their Nexus BlobIds, the ids the ledger records, so a proof speaks about
//! exactly the blobs a job and its result name. The *beneficiary* ([`beneficiary`]) names
//! the job and the one account that may be paid for the proof: a proof made for one job
//! or one account verifies for no other, so copying or front-running a result gains
//! nothing. It is the second input item the host gives the guest, read only when the
//! output is committed, so the segments before the last one do not depend on it.

use sha2::{Digest, Sha256};

/// The beneficiary of runs that are not made for any job (`nexus compute run`, local
/// proofs): all zeros, which no job's [`beneficiary`] equals.
pub const NO_BENEFICIARY: [u8; 32] = [0; 32];

const BENEFICIARY_TAG: &[u8] = b"nexus/beneficiary/v1";

/// Bytes per leaf of a blob's Merkle tree (nexus-storage's `LEAF_SIZE`).
const LEAF_SIZE: usize = 4096;

/// The beneficiary of a proof of job `job` that account `account` (its public key bytes)
/// anchors: `SHA-256("nexus/beneficiary/v1" ‖ job ‖ account)`.
pub fn beneficiary(job: &[u8; 32], account: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(BENEFICIARY_TAG);
    h.update(job);
    h.update(account);
    h.finalize().into()
}

/// The 32-byte public value of a run for `beneficiary` that read the blob `input_id` and
/// committed the blob `output_id`.
pub fn public_value(beneficiary: &[u8; 32], input_id: &[u8; 32], output_id: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(beneficiary);
    h.update(input_id);
    h.update(output_id);
    h.finalize().into()
}

/// The Nexus BlobId of `bytes`, as the guest runtime computes it for its input and output:
/// `SHA-256(0x02 ‖ len as u64 BE ‖ root)` over 4 KiB leaves hashed `SHA-256(0x00 ‖ leaf)`,
/// nodes `SHA-256(0x01 ‖ left ‖ right)`, an odd node carried up (RFC 6962's shape). The
/// same id as nexus-storage's `BlobId::of` (checked by the ledger's tests against the
/// guest and this function alike); kept here so that the host can check a run without the
/// store.
pub fn blob_id(bytes: &[u8]) -> [u8; 32] {
    let mut level: Vec<[u8; 32]> = if bytes.is_empty() {
        vec![tagged(0x00, &[b""])]
    } else {
        bytes
            .chunks(LEAF_SIZE)
            .map(|leaf| tagged(0x00, &[leaf]))
            .collect()
    };
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => tagged(0x01, &[left, right]),
                [odd] => *odd,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
    }
    tagged(0x02, &[&(bytes.len() as u64).to_be_bytes(), &level[0]])
}

fn tagged(tag: u8, parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([tag]);
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binding_changes_with_every_part_and_does_not_commute() {
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let base = public_value(&a, &b, &c);
        assert_ne!(base, public_value(&NO_BENEFICIARY, &b, &c));
        assert_ne!(base, public_value(&a, &c, &b));
        assert_ne!(base, public_value(&a, &b, &b));
        assert_ne!(beneficiary(&a, b"alice"), beneficiary(&a, b"bob"));
        assert_ne!(beneficiary(&a, b"alice"), beneficiary(&b, b"alice"));
    }

    #[test]
    fn known_answers() {
        // Computed independently with Python's hashlib (RFC 6962's recursive split).
        assert_eq!(
            hex(&blob_id(b"")),
            "c0e50f0d90d6e2fea1e6f53d4f758ed5fc9035a399a8eb215c29c6ff3ea05425"
        );
        assert_eq!(
            hex(&blob_id(&vec![7u8; 3 * LEAF_SIZE + 1])),
            "ad13bc84ad833ab0e3339bf4a1ab5964c3c4499409817d7d01ca5d60d4189ee5"
        );
        assert_eq!(
            hex(&public_value(&[1; 32], &[2; 32], &[3; 32])),
            "8a2e491356cfdb05a1d13785e0794d7cd163f91af79a146c976b1d2ac643b679"
        );
    }

    fn hex(b: &[u8; 32]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
