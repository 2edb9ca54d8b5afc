//! The user-facing commands that talk to a node's HTTP API.

mod get;
mod put;
mod status;
mod verify;

pub(crate) use get::{download, get, GetArgs};
pub(crate) use put::{put, upload, PutArgs};
pub(crate) use status::status;
pub(crate) use verify::{verify, VerifyArgs};
