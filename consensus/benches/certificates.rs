//! Quorum and timeout certificates at 4 and 128 validators: size, and verification time
//! against the same votes checked one by one (what a multi-signature without aggregation
//! costs), in one run. `cargo bench -p nexus-consensus --bench certificates`.

#[path = "support/costs.rs"]
mod costs;

use blst::min_pk;
use nexus_consensus::{
    ConsensusMessage, QuorumCertificate, Round, Signature, SignerBitmap, TimeoutCertificate, Vote,
};

use costs::{committee, median_us, vote_data, Measured};

/// Adds signatures up (the crate's own aggregation is internal).
fn aggregate(sigs: &[Signature]) -> Signature {
    let parsed: Vec<min_pk::Signature> = sigs
        .iter()
        .map(|s| min_pk::Signature::from_bytes(&s.0).expect("sig"))
        .collect();
    let refs: Vec<&min_pk::Signature> = parsed.iter().collect();
    let sum = min_pk::AggregateSignature::aggregate(&refs, false).expect("aggregate");
    Signature(sum.to_signature().compress())
}

fn main() {
    let m = Measured::now();
    println!(
        "one vote: sign {:.0} µs, verify {:.0} µs; a vote in a batch of 64: {:.0} µs; \
         fdatasync of 600 bytes: {:.0} µs\n",
        m.sign_us, m.verify_us, m.vote_in_batch_us, m.fsync_us
    );
    println!(
        "| validators | QC bytes | QC verify (µs) | quorum's votes one by one (µs) | ratio | \
         votes' bytes | TC bytes | TC verify (µs) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for n in [4usize, 128] {
        let (keys, ctx) = committee(n, "certificates");
        let quorum = n * 2 / 3 + 1;
        let committee = ctx.committee();
        let signers: Vec<usize> = (0..quorum).collect();
        let key_at = |i: usize| {
            keys.iter()
                .find(|k| committee.index_of(&k.public()) == Some(i))
                .expect("key")
        };
        let data = vote_data(8);
        let votes: Vec<Vote> = signers
            .iter()
            .map(|&i| Vote::sign(key_at(i), ctx.tag(), data))
            .collect();
        let qc = QuorumCertificate {
            vote: data,
            signers: SignerBitmap::from_indices(n, signers.iter().copied()),
            signature: aggregate(&votes.iter().map(|v| v.signature).collect::<Vec<_>>()),
        };
        assert_eq!(qc.verify(&ctx), Ok(()));
        let qc_us = median_us(31, || assert!(qc.verify(&ctx).is_ok()));
        let one_by_one_us = median_us(5, || {
            for v in &votes {
                let message = ConsensusMessage::Vote(Box::new(v.clone()));
                assert!(message.verify(&ctx).is_ok());
            }
        });
        let qc_bytes = postcard::to_stdvec(&qc).expect("encode").len();
        let votes_bytes = postcard::to_stdvec(&votes).expect("encode").len();

        // A TC whose signers report three different highest QC rounds.
        let tc_sigs: Vec<(usize, Round, Signature)> = signers
            .iter()
            .map(|&i| {
                let hqc = Round(5 + (i % 3) as u64);
                let t = nexus_consensus::Timeout::sign(
                    key_at(i),
                    ctx.tag(),
                    nexus_consensus::Epoch(0),
                    Round(9),
                    QuorumCertificate {
                        vote: nexus_consensus::VoteData { round: hqc, ..data },
                        ..qc.clone()
                    },
                    None,
                );
                (i, hqc, t.signature)
            })
            .collect();
        let high = tc_sigs.iter().map(|t| t.1).max().expect("rounds");
        let high_data = nexus_consensus::VoteData {
            round: high,
            ..data
        };
        let high_qc = QuorumCertificate {
            vote: high_data,
            signers: qc.signers.clone(),
            signature: aggregate(
                &signers
                    .iter()
                    .map(|&i| Vote::sign(key_at(i), ctx.tag(), high_data).signature)
                    .collect::<Vec<_>>(),
            ),
        };
        let tc = TimeoutCertificate {
            epoch: nexus_consensus::Epoch(0),
            round: Round(9),
            high_qc,
            signers: SignerBitmap::from_indices(n, signers.iter().copied()),
            high_qc_rounds: tc_sigs.iter().map(|t| t.1).collect(),
            signature: aggregate(&tc_sigs.iter().map(|t| t.2).collect::<Vec<_>>()),
        };
        assert_eq!(tc.verify(&ctx), Ok(()));
        let tc_us = median_us(11, || assert!(tc.verify(&ctx).is_ok()));
        let tc_bytes = postcard::to_stdvec(&tc).expect("encode").len();
        println!(
            "| {n} | {qc_bytes} | {qc_us:.0} | {one_by_one_us:.0} | {:.1}x | {votes_bytes} | \
             {tc_bytes} | {tc_us:.0} |",
            one_by_one_us / qc_us
        );
    }
}
