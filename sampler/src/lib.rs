//! Data-availability sampling for Nexus.
//!
//! - [`custody`]: which storage node keeps which cells, computed by anyone from the node
//!   set, the epoch and the network's custody parameters.
//! - [`CellSource`]: where cells come from (the network implements it over
//!   request-response; anything that can answer "sample at this coordinate" can).
//! - [`Sampler`]: draws distinct random cells, fetches them in parallel from custodians with
//!   timeouts, retries on other custodians and per-peer limits, verifies every sample in one
//!   batch, and reports available or not with the exact confidence from `nexus-das`.
//! - [`verdicts`]: a validator's book of what sampling found about each grid, and when to
//!   sample again.

pub mod custody;
mod sampler;
mod source;
pub mod verdicts;

pub use custody::{Custody, CustodyParams};
pub use sampler::{CellsReport, Sampler, SamplerConfig, SamplingReport};
pub use source::{CellSource, FetchError, Fetched};
