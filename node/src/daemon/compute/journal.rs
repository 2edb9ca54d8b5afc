//! The proofs a driver has checked, kept on disk per job, so that a driver that restarts
//! resumes its job instead of having every node proven again, with its record of who
//! proved which node (and their receipts, so that the result still pays them) and who
//! failed (so that the schedule still passes them over). Each file is written to a temporary file, synced and renamed: a crash
//! leaves it whole or absent. What is read back is only a hint — the driver checks every
//! kept proof again before using it — and a job's files are forgotten once it closes.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use nexus_compute::zkvm::MAX_NODE_PROOF_BYTES;
use nexus_compute::{NodeRef, ProverId};
use nexus_storage::{Digest, Signature};
use serde::{Deserialize, Serialize};

/// File of the sealed Universal Proof in a job's folder.
const SEALED: &str = "universal.proof";
/// File of the driver's [`DriveRecord`] in a job's folder.
const RECORD: &str = "record.json";

/// The proofs kept for one job.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    /// Tree nodes' proofs, encoded.
    pub(crate) nodes: BTreeMap<NodeRef, Vec<u8>>,
    /// The sealed Universal Proof, encoded, once made.
    pub(crate) sealed: Option<Vec<u8>>,
    /// Who proved what and who failed, as last written.
    pub(crate) record: DriveRecord,
}

/// A driver's record of a job beside its proofs, with BLS receipts.
pub(crate) type DriveRecord = nexus_compute::drive::DriveRecord<Signature>;

/// [`DriveRecord`] as written: JSON objects take only string keys.
#[derive(Serialize, Deserialize)]
struct RecordFile {
    /// `"LEVEL-INDEX"` → account key.
    proven_by: BTreeMap<String, String>,
    /// `"LEVEL-INDEX"` → receipt in hex.
    #[serde(default)]
    receipts: BTreeMap<String, String>,
    /// Prover id in hex → failures.
    failures: BTreeMap<String, u32>,
}

/// `record` as written to its file.
fn encode_record(record: &DriveRecord) -> Vec<u8> {
    let file = RecordFile {
        proven_by: record
            .proven_by
            .iter()
            .map(|(n, who)| (format!("{}-{}", n.level, n.index), who.clone()))
            .collect(),
        receipts: record
            .receipts
            .iter()
            .map(|(n, sig)| (format!("{}-{}", n.level, n.index), hex::encode(sig.0)))
            .collect(),
        failures: record
            .failures
            .iter()
            .map(|(p, count)| (hex::encode(p.0), *count))
            .collect(),
    };
    serde_json::to_vec(&file).expect("a map of strings encodes")
}

/// The record in `bytes`; entries that do not parse are dropped.
fn decode_record(bytes: &[u8]) -> DriveRecord {
    let Ok(file) = serde_json::from_slice::<RecordFile>(bytes) else {
        return DriveRecord::default();
    };
    DriveRecord {
        proven_by: file
            .proven_by
            .into_iter()
            .filter_map(|(n, who)| Some((parse_node(&n)?, who)))
            .collect(),
        receipts: file
            .receipts
            .into_iter()
            .filter_map(|(n, sig)| {
                let bytes: [u8; 96] = hex::decode(sig).ok()?.try_into().ok()?;
                Some((parse_node(&n)?, Signature(bytes)))
            })
            .collect(),
        failures: file
            .failures
            .into_iter()
            .filter_map(|(p, count)| {
                let id: [u8; 32] = hex::decode(p).ok()?.try_into().ok()?;
                Some((ProverId(id), count))
            })
            .collect(),
    }
}

/// Checked proofs of the jobs this node drives, one folder per job under `dir`.
#[derive(Debug, Clone)]
pub(crate) struct ProofJournal {
    dir: PathBuf,
}

impl ProofJournal {
    /// The journal kept in `dir` (created on first write).
    pub(crate) fn new(dir: PathBuf) -> ProofJournal {
        ProofJournal { dir }
    }

    fn job_dir(&self, job: &Digest) -> PathBuf {
        self.dir.join(job.to_string())
    }

    /// Keeps `bytes` as the checked proof of node `n` of `job`.
    pub(crate) fn keep(&self, job: &Digest, n: NodeRef, bytes: &[u8]) -> std::io::Result<()> {
        write_whole(&self.job_dir(job), &node_file(n), bytes)
    }

    /// Keeps `job`'s sealed Universal Proof.
    pub(crate) fn keep_sealed(&self, job: &Digest, bytes: &[u8]) -> std::io::Result<()> {
        write_whole(&self.job_dir(job), SEALED, bytes)
    }

    /// Keeps `record` as `job`'s record, replacing the last one.
    pub(crate) fn keep_record(&self, job: &Digest, record: &DriveRecord) -> std::io::Result<()> {
        write_whole(&self.job_dir(job), RECORD, &encode_record(record))
    }

    /// What is kept for `job`; files that are not ours, too large or unreadable are skipped.
    pub(crate) fn kept(&self, job: &Digest) -> Kept {
        let mut kept = Kept::default();
        let Ok(entries) = std::fs::read_dir(self.job_dir(job)) else {
            return kept;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let small = entry
                .metadata()
                .is_ok_and(|m| m.is_file() && m.len() <= MAX_NODE_PROOF_BYTES as u64);
            if !small {
                continue;
            }
            let Ok(bytes) = std::fs::read(entry.path()) else {
                continue;
            };
            if name == SEALED {
                kept.sealed = Some(bytes);
            } else if name == RECORD {
                kept.record = decode_record(&bytes);
            } else if let Some(n) = parse_node_file(&name) {
                kept.nodes.insert(n, bytes);
            }
        }
        kept
    }

    /// Forgets the proofs of every job for which `open` is false.
    pub(crate) fn forget_closed(&self, open: impl Fn(&str) -> bool) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !open(&name) {
                if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                    tracing::warn!("cannot remove {}: {e}", entry.path().display());
                }
            }
        }
    }
}

fn node_file(n: NodeRef) -> String {
    format!("node-{}-{}.proof", n.level, n.index)
}

fn parse_node_file(name: &str) -> Option<NodeRef> {
    parse_node(name.strip_prefix("node-")?.strip_suffix(".proof")?)
}

/// `"LEVEL-INDEX"` as a node.
fn parse_node(text: &str) -> Option<NodeRef> {
    let (level, index) = text.split_once('-')?;
    Some(NodeRef {
        level: level.parse().ok()?,
        index: index.parse().ok()?,
    })
}

/// Writes `dir/name` whole or not at all.
fn write_whole(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(dir.join(name)).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_proofs_come_back_and_closed_jobs_are_forgotten() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let journal = ProofJournal::new(tmp.path().join("journal"));
        let (open, closed) = (Digest([1; 32]), Digest([2; 32]));
        let leaf = NodeRef { level: 1, index: 3 };
        journal.keep(&open, leaf, b"leaf proof").expect("keep");
        journal.keep_sealed(&open, b"sealed").expect("keep");
        journal
            .keep(&closed, NodeRef { level: 0, index: 0 }, b"x")
            .expect("keep");
        // A stray file and a partial write's leftovers are not proofs.
        std::fs::write(journal.job_dir(&open).join("node-x-1.proof"), b"?").expect("write");
        std::fs::write(journal.job_dir(&open).join(".tmpXYZ"), b"?").expect("write");

        let kept = journal.kept(&open);
        assert_eq!(kept.nodes.len(), 1);
        assert_eq!(kept.nodes[&leaf], b"leaf proof");
        assert_eq!(kept.sealed.as_deref(), Some(&b"sealed"[..]));

        let open_name = open.to_string();
        journal.forget_closed(|name| name == open_name);
        assert!(journal.kept(&closed).nodes.is_empty());
        assert_eq!(journal.kept(&open).nodes.len(), 1);
    }

    #[test]
    fn the_record_comes_back_as_written_and_a_damaged_one_as_empty() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let journal = ProofJournal::new(tmp.path().join("journal"));
        let job = Digest([3; 32]);
        let record = DriveRecord {
            proven_by: [
                (NodeRef { level: 0, index: 2 }, "acct-a".to_string()),
                (NodeRef { level: 1, index: 0 }, "acct-b".to_string()),
            ]
            .into(),
            receipts: [(NodeRef { level: 0, index: 2 }, Signature([9; 96]))].into(),
            failures: [(ProverId([5; 32]), 3), (ProverId([6; 32]), 1)].into(),
        };
        journal.keep_record(&job, &record).expect("keep");
        assert_eq!(journal.kept(&job).record, record);
        // A newer record replaces the older one whole.
        let mut newer = record.clone();
        newer.failures.insert(ProverId([5; 32]), 4);
        journal.keep_record(&job, &newer).expect("keep");
        assert_eq!(journal.kept(&job).record, newer);

        std::fs::write(journal.job_dir(&job).join(RECORD), b"{\"proven_by\": 7").expect("write");
        assert_eq!(journal.kept(&job).record, DriveRecord::default());
        let odd = br#"{"proven_by":{"x-1":"a","0-4":"b"},"failures":{"zz":1}}"#;
        std::fs::write(journal.job_dir(&job).join(RECORD), odd).expect("write");
        let kept = journal.kept(&job).record;
        assert_eq!(kept.proven_by.len(), 1);
        assert!(kept.failures.is_empty());
    }

    #[test]
    fn a_journal_that_was_never_written_keeps_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let journal = ProofJournal::new(tmp.path().join("none"));
        assert!(journal.kept(&Digest([1; 32])).nodes.is_empty());
        journal.forget_closed(|_| false);
    }
}
