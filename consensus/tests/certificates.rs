//! Certificates and signatures against a real committee: stake (not head count) decides a
//! quorum, and no signature of one kind, chain or epoch verifies as another.

use nexus_consensus::{BlockHash, ChainTag};
use nexus_consensus::{
    CertificateError, ChainSpec, Committee, ConsensusMessage, Context, Epoch, FinalityError,
    FinalityProof, MessageError, QuorumCertificate, Round, SignerBitmap, SigningKey, Timeout,
    Validator, Vote, VoteData,
};

fn keys(n: u8) -> Vec<SigningKey> {
    (0..n)
        .map(|i| SigningKey::from_seed(&[i + 1; 32]))
        .collect()
}

fn context(keys: &[SigningKey], stakes: &[u64], chain: &str) -> Context {
    let validators = keys
        .iter()
        .zip(stakes)
        .map(|(k, s)| Validator::new(k, *s, ""))
        .collect();
    let spec = ChainSpec::new(
        chain,
        Committee::new(Epoch(0), validators).expect("committee"),
    );
    Context::new(spec, BlockHash([9; 32]))
}

/// A QC over `data` signed by the validators at `signers` (committee indices).
fn qc(ctx: &Context, keys: &[SigningKey], data: VoteData, signers: &[usize]) -> QuorumCertificate {
    let committee = ctx.committee();
    let mut sigs = Vec::new();
    for i in signers {
        let key = keys
            .iter()
            .find(|k| committee.index_of(&k.public()) == Some(*i))
            .expect("key");
        sigs.push(Vote::sign(key, ctx.tag(), data).signature);
    }
    QuorumCertificate {
        vote: data,
        signers: SignerBitmap::from_indices(committee.len(), signers.iter().copied()),
        signature: aggregate(&sigs),
    }
}

/// Adds signatures up with blst directly (the crate's own aggregation is private).
fn aggregate(sigs: &[nexus_consensus::Signature]) -> nexus_consensus::Signature {
    use blst::min_pk::{AggregateSignature, Signature};
    let parsed: Vec<Signature> = sigs
        .iter()
        .map(|s| Signature::from_bytes(&s.0).expect("sig"))
        .collect();
    let refs: Vec<&Signature> = parsed.iter().collect();
    let agg = AggregateSignature::aggregate(&refs, true).expect("aggregate");
    nexus_consensus::Signature(agg.to_signature().compress())
}

fn data(round: u64) -> VoteData {
    VoteData {
        epoch: Epoch(0),
        round: Round(round),
        block: BlockHash([round as u8; 32]),
        commit: Some(BlockHash([0xAA; 32])),
    }
}

#[test]
fn a_qc_of_most_validators_but_not_most_stake_is_rejected() {
    let keys = keys(4);
    // One validator holds 7 of 10 units of stake.
    let ctx = context(&keys, &[1, 1, 1, 7], "unequal");
    let heavy = ctx.committee().index_of(&keys[3].public()).expect("heavy");
    let light: Vec<usize> = (0..4).filter(|i| *i != heavy).collect();
    let three_light = qc(&ctx, &keys, data(5), &light);
    assert_eq!(
        three_light.verify(&ctx),
        Err(CertificateError::NotQuorum {
            stake: 3,
            total: 10
        })
    );
    let heavy_alone = qc(&ctx, &keys, data(5), &[heavy]);
    assert_eq!(heavy_alone.verify(&ctx), Ok(()));
    // Equal stakes: three of four is a quorum, two is not.
    let equal = context(&keys, &[1, 1, 1, 1], "equal");
    assert_eq!(
        qc(&equal, &keys, data(5), &[0, 1, 2]).verify(&equal),
        Ok(())
    );
    assert!(matches!(
        qc(&equal, &keys, data(5), &[0, 1]).verify(&equal),
        Err(CertificateError::NotQuorum { .. })
    ));
}

#[test]
fn certificates_bind_signers_data_and_bitmap() {
    let keys = keys(4);
    let ctx = context(&keys, &[1, 1, 1, 1], "bind");
    let good = qc(&ctx, &keys, data(5), &[0, 1, 2]);
    let mut other_block = good.clone();
    other_block.vote.block = BlockHash([1; 32]);
    assert_eq!(
        other_block.verify(&ctx),
        Err(CertificateError::BadSignature)
    );
    let mut other_commit = good.clone();
    other_commit.vote.commit = None;
    assert_eq!(
        other_commit.verify(&ctx),
        Err(CertificateError::BadSignature)
    );
    let mut claimed_more = good.clone();
    claimed_more.signers = SignerBitmap::from_indices(4, [0, 1, 2, 3]);
    assert_eq!(
        claimed_more.verify(&ctx),
        Err(CertificateError::BadSignature)
    );
    let mut oversized = good.clone();
    oversized.signers = SignerBitmap::from_indices(16, [0, 1, 2, 12]);
    assert_eq!(oversized.verify(&ctx), Err(CertificateError::BadBitmap(4)));
    let mut fake_genesis = good;
    fake_genesis.vote.round = Round(0);
    assert_eq!(fake_genesis.verify(&ctx), Err(CertificateError::NotGenesis));
    assert_eq!(
        QuorumCertificate::genesis(ctx.genesis()).verify(&ctx),
        Ok(())
    );
}

#[test]
fn votes_replayed_as_timeouts_or_on_another_epoch_or_chain_are_rejected() {
    let keys = keys(4);
    let ctx = context(&keys, &[1, 1, 1, 1], "home");
    let other_chain = context(&keys, &[1, 1, 1, 1], "elsewhere");
    let vote = Vote::sign(&keys[0], ctx.tag(), data(7));
    assert!(ConsensusMessage::Vote(Box::new(vote.clone()))
        .verify(&ctx)
        .is_ok());
    // Another chain id: the same committee, a different signing domain.
    assert_eq!(
        ConsensusMessage::Vote(Box::new(vote.clone()))
            .verify(&other_chain)
            .err(),
        Some(MessageError::BadSignature)
    );
    // Another epoch: refused outright, and the signature would not fit either.
    let mut later = vote.clone();
    later.data.epoch = Epoch(1);
    assert!(matches!(
        ConsensusMessage::Vote(Box::new(later)).verify(&ctx),
        Err(MessageError::WrongEpoch { .. })
    ));
    let forged_epoch = Vote::sign(
        &keys[0],
        ctx.tag(),
        VoteData {
            epoch: Epoch(1),
            ..data(7)
        },
    );
    let mut moved = forged_epoch;
    moved.data.epoch = Epoch(0);
    assert_eq!(
        ConsensusMessage::Vote(Box::new(moved)).verify(&ctx).err(),
        Some(MessageError::BadSignature)
    );
    // The vote's signature presented as a timeout of the same round.
    let genesis_qc = QuorumCertificate::genesis(ctx.genesis());
    let mut replay = Timeout::sign(&keys[0], ctx.tag(), Epoch(0), Round(7), genesis_qc, None);
    replay.signature = vote.signature;
    assert_eq!(
        ConsensusMessage::Timeout(Box::new(replay))
            .verify(&ctx)
            .err(),
        Some(MessageError::BadSignature)
    );
    // And a QC built from votes of another chain does not verify here.
    let foreign = qc(&other_chain, &keys, data(7), &[0, 1, 2]);
    assert_eq!(foreign.verify(&ctx), Err(CertificateError::BadSignature));
    // A signature made for one chain tag is not one for another (the tag is in the bytes).
    assert_ne!(ChainTag::of("home"), ChainTag::of("elsewhere"));
}

#[test]
fn a_stranger_cannot_vote() {
    let keys = keys(4);
    let ctx = context(&keys[..3], &[1, 1, 1], "members");
    let vote = Vote::sign(&keys[3], ctx.tag(), data(3));
    assert_eq!(
        ConsensusMessage::Vote(Box::new(vote)).verify(&ctx).err(),
        Some(MessageError::NotValidator(keys[3].public()))
    );
}

#[test]
fn finality_proofs_walk_links_to_a_committing_qc() {
    use nexus_consensus::{DataHeader, Header, Height};
    use nexus_das::merkle::Digest;
    let keys = keys(4);
    let ctx = context(&keys, &[1, 1, 1, 1], "final");
    let header = |height: u64, parent: BlockHash| Header {
        height: Height(height),
        epoch: Epoch(0),
        round: Round(height),
        parent,
        timestamp_ms: height,
        transactions_root: Digest::ZERO,
        transaction_count: 0,
        state_root: Digest::ZERO,
        proposer: keys[0].public(),
        data: DataHeader::empty(2).expect("empty"),
        spec: ctx.spec_digest(),
    };
    let a = header(1, ctx.genesis());
    let b = header(2, a.hash());
    let commits = |block: BlockHash| VoteData {
        epoch: Epoch(0),
        round: Round(4),
        block: BlockHash([4; 32]),
        commit: Some(block),
    };
    let direct = FinalityProof {
        descendants: vec![],
        qc: qc(&ctx, &keys, commits(a.hash()), &[0, 1, 2]),
    };
    assert_eq!(direct.verify(&a, &ctx), Ok(()));
    assert!(matches!(
        direct.verify(&b, &ctx),
        Err(FinalityError::WrongCommit { .. })
    ));
    let indirect = FinalityProof {
        descendants: vec![b.clone()],
        qc: qc(&ctx, &keys, commits(b.hash()), &[0, 1, 3]),
    };
    assert_eq!(indirect.verify(&a, &ctx), Ok(()));
    let unlinked = FinalityProof {
        descendants: vec![header(2, BlockHash([3; 32]))],
        qc: indirect.qc.clone(),
    };
    assert_eq!(
        unlinked.verify(&a, &ctx),
        Err(FinalityError::BrokenLink { index: 0 })
    );
}

#[test]
fn votes_checked_in_a_batch_pass_or_fail_one_by_one() {
    let keys = keys(5);
    let ctx = context(&keys[..4], &[1, 1, 1, 1], "batch");
    let mut votes: Vec<Vote> = keys[..3]
        .iter()
        .map(|k| Vote::sign(k, ctx.tag(), data(9)))
        .collect();
    // A bad signature among good ones, a vote for other data, and a stranger's vote.
    let mut forged = Vote::sign(&keys[3], ctx.tag(), data(9));
    forged.signature = votes[0].signature;
    votes.push(forged);
    votes.push(Vote::sign(&keys[3], ctx.tag(), data(10)));
    votes.push(Vote::sign(&keys[4], ctx.tag(), data(9)));
    let results = ConsensusMessage::verify_votes(&ctx, votes);
    let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
    assert_eq!(ok, vec![true, true, true, false, true, false]);
    assert_eq!(results[3].as_ref().err(), Some(&MessageError::BadSignature));
    assert_eq!(
        results[5].as_ref().err(),
        Some(&MessageError::NotValidator(keys[4].public()))
    );
}
