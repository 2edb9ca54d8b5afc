//! The user-facing commands that talk to a node's HTTP API.

mod compute;
mod get;
mod inspect;
mod keys;
mod ledger;
mod put;
mod status;
mod validator;
mod verify;

pub(crate) use compute::{compute, counted, default_key_dir, describe_tree, ComputeCommand};
pub(crate) use get::{download, get, GetArgs};
pub(crate) use inspect::{inspect, InspectArgs};
pub(crate) use keys::{funded_genesis, keys, node_keys, KeysArgs};
pub(crate) use ledger::{
    account, orchestrator, provider, send as send_transaction, AccountCommand, OrchestratorCommand,
    ProviderCommand,
};
pub(crate) use put::{put, upload, Policy, PutArgs};
pub(crate) use status::status;
pub(crate) use validator::{validator, ValidatorCommand};
pub(crate) use verify::{verify, VerifyArgs};
