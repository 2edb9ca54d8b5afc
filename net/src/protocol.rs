//! The wire protocols: message types, protocol ids and size caps, one module each.

pub mod blocks;
pub mod cells;
pub mod chunks;
pub mod drives;
pub mod gossip;
pub mod headers;
pub mod proofs;

#[cfg(test)]
mod tests;
