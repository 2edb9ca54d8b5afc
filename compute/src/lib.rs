//! Verifiable compute for Nexus: a job's run is cut into segments, each proven by a
//! delegator; orchestrators fold the proofs level by level into one root, the job's
//! Universal Proof. This crate holds the parts every party must agree on without running
//! a prover: the shape of a job's proof tree ([`tree`], OpenVM's aggregation layout) and
//! who proves which node when ([`schedule`], deterministic, deadlines in block heights).
//! Sans-io: no network, no store, no prover.

pub mod program;
pub mod schedule;
pub mod tree;

pub use program::{inspect, ProgramError, ProgramInfo};
pub use schedule::{Action, Failure, Input, JobId, ProverId, Schedule, ScheduleError};
pub use tree::{ChildKind, Level, NodeRef, PlanError, ProofTree, TreeShape};
