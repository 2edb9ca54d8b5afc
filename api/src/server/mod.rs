//! Serving the API: the accept loop ([`listener`]), the bound on uploads served at once
//! ([`slots`]) and the errors routes answer ([`error`]).

pub mod error;
pub mod listener;
mod refusals;
pub mod slots;
