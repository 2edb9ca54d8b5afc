//! What one validator's CPU and disk spend per consensus operation, measured on this
//! machine: shared by the certificate and simulator benchmarks.

#![allow(dead_code, unreachable_pub)]

use std::time::Instant;

use nexus_consensus::{
    BlockHash, ChainSpec, Committee, ConsensusMessage, Context, Epoch, Round, SigningKey,
    Validator, Vote, VoteData,
};

/// Median wall time of `runs` runs of `f`, in µs.
pub fn median_us(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

/// `n` validator keys, a committee of them (stake 1 each) and its context.
pub fn committee(n: usize, chain: &str) -> (Vec<SigningKey>, Context) {
    let keys: Vec<SigningKey> = (0..n)
        .map(|i| {
            let mut seed = [3u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            SigningKey::from_seed(&seed)
        })
        .collect();
    let validators = keys.iter().map(|k| Validator::new(k, 1, "")).collect();
    let spec = ChainSpec::new(
        chain,
        Committee::new(Epoch(0), validators).expect("committee"),
    );
    (keys, Context::new(spec, BlockHash([1; 32])))
}

/// The data of a vote in round `round`.
pub fn vote_data(round: u64) -> VoteData {
    VoteData {
        epoch: Epoch(0),
        round: Round(round),
        block: BlockHash([round as u8; 32]),
        commit: Some(BlockHash([9; 32])),
    }
}

/// Measured costs, in µs.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub sign_us: f64,
    pub verify_us: f64,
    pub vote_in_batch_us: f64,
    pub fsync_us: f64,
}

impl Measured {
    /// Measures signing, checking one vote, the marginal cost of a vote in a batch of 64,
    /// and an fdatasync of a small file in the working directory.
    pub fn now() -> Measured {
        let (keys, ctx) = committee(64, "costs");
        let data = vote_data(5);
        let sign_us = median_us(101, || {
            std::hint::black_box(Vote::sign(&keys[0], ctx.tag(), data));
        });
        let votes: Vec<Vote> = keys
            .iter()
            .map(|k| Vote::sign(k, ctx.tag(), data))
            .collect();
        let verify_us = median_us(101, || {
            let m = ConsensusMessage::Vote(Box::new(votes[0].clone()));
            std::hint::black_box(m.verify(&ctx).is_ok());
        });
        let batch_us = median_us(11, || {
            let results = ConsensusMessage::verify_votes(&ctx, votes.clone());
            assert!(results.iter().all(Result::is_ok));
        });
        let vote_in_batch_us = ((batch_us - verify_us) / (votes.len() - 1) as f64).max(1.0);
        let dir = std::env::temp_dir().join(format!("nexus-fsync-{}", std::process::id()));
        let fsync_us = {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&dir).expect("temp file");
            let t = median_us(101, || {
                file.write_all(&[7; 600]).expect("write");
                file.sync_data().expect("fsync");
            });
            let _ = std::fs::remove_file(&dir);
            t
        };
        Measured {
            sign_us,
            verify_us,
            vote_in_batch_us,
            fsync_us,
        }
    }
}
