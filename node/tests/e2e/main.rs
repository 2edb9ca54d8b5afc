//! End-to-end tests with real `nexus` processes on loopback, compiled into one test binary
//! so that it is linked once and its tests run side by side (as many at once as the test
//! harness runs threads, by default one per core). The tests that would compete for the
//! cores or the machine's network set-up keep binaries of their own and run alone:
//! `compute` (real proofs), `partition` (network namespaces) and `sybil` (thousands of
//! connections).

#[path = "../support/mod.rs"]
mod support;

mod cli_and_api;
mod consensus;
mod das_blob;
mod erasure;
mod hardening;
mod ledger;
mod light;
mod replication;
mod resumable;
