//! Verifiable compute for Nexus: a job's run is cut into segments, each proven by a
//! delegator; orchestrators fold the proofs level by level into one root, the job's
//! Universal Proof. This crate holds the rules every party must agree on — the shape of a
//! job's proof tree ([`tree`], OpenVM's aggregation layout), who proves which node when
//! ([`schedule`], deterministic, deadlines in block heights), what the driver of a job asks
//! next, records and resumes ([`drive`], sans-io), what it reports ([`progress`]), what a program must be
//! ([`program`]) and what its public value binds ([`binding`]) — and, with the `zkvm`
//! feature (on by default), the zkVM that runs and proves one node at a time (`zkvm`,
//! OpenVM 2.0.2). Without that feature the crate builds in seconds, for parties that need
//! only the rules (the ledger). No network and no store: the node moves the bytes.

pub mod binding;
pub mod drive;
pub mod examples;
pub mod latency;
pub mod program;
pub mod progress;
pub mod schedule;
pub mod sizes;
pub mod tree;
#[cfg(feature = "zkvm")]
pub mod zkvm;

pub use latency::{tree_latency, Machines};
pub use program::{inspect, ProgramError, ProgramInfo};
pub use schedule::{
    driver, Action, Failure, Input, JobId, Progress, ProverId, Schedule, ScheduleError,
};
pub use tree::{ChildKind, Level, NodeRef, PlanError, ProofTree, TreeShape};
