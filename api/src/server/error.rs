//! The API's errors: each a status code, a machine-readable kind and a message a user can
//! act on, answered as a JSON [`ErrorBody`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use nexus_storage::{BlobId, StoreError};

use crate::types::ErrorBody;

/// An API failure: status code plus a message a user can act on.
#[derive(Debug)]
pub enum ApiError {
    /// The request is malformed (400).
    BadRequest(String),
    /// The ledger refuses the transaction (insufficient balance, unknown orchestrator...).
    Rejected(String),
    /// No block this node holds registers the blob; `synced` is its tip, `network` the
    /// highest height announced to it (above `synced` when the node is catching up).
    UnknownBlob {
        /// The blob asked for.
        id: BlobId,
        /// The node's finalized height.
        synced: u64,
        /// The highest height announced to the node.
        network: u64,
    },
    /// What was asked for does not exist (404).
    NotFound(String),
    /// The blob's paid epochs ran out: nodes deleted its bytes.
    Expired {
        /// The blob asked for.
        id: BlobId,
        /// The height of the block that registered it.
        registered_at: u64,
    },
    /// The request contradicts what the chain already records.
    Conflict(String),
    /// The node's storage quota has no room left for it.
    QuotaExceeded(String),
    /// The data dir's disk has no room left for it.
    DiskFull(String),
    /// An upload fell below the minimum rate.
    SlowUpload(String),
    /// A client holds as many resumable uploads as it may (or all clients do).
    TooManyUploads(String),
    /// The client already has a request of this kind in progress.
    Busy(String),
    /// The node cannot serve it now (no chain yet, finality too slow): retry later.
    Unavailable(String),
    /// The node failed (a store error): not the client's fault.
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, error) = self.parts();
        let body = ErrorBody {
            kind: kind.into(),
            error,
        };
        (status, Json(body)).into_response()
    }
}

impl ApiError {
    /// Status code, machine-readable kind and the message for the user.
    pub fn parts(self) -> (StatusCode, &'static str, String) {
        match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
            ApiError::Rejected(m) => (StatusCode::UNPROCESSABLE_ENTITY, "rejected", m),
            ApiError::UnknownBlob {
                id,
                synced,
                network,
            } => (
                StatusCode::NOT_FOUND,
                "unknown_blob",
                if network > synced {
                    format!(
                        "unknown blob {id} as of height {synced}: this node is still syncing \
                         (the network is at {network}); try again once it has caught up"
                    )
                } else {
                    format!("unknown blob {id}: no block up to height {synced} registers it")
                },
            ),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
            ApiError::Expired { id, registered_at } => (
                StatusCode::GONE,
                "expired",
                format!(
                    "blob {id} expired: the epochs paid for at height {registered_at} ran out \
                     and nodes deleted its bytes (its registration stays provable)"
                ),
            ),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m),
            ApiError::QuotaExceeded(m) => (StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded", m),
            ApiError::DiskFull(m) => (StatusCode::INSUFFICIENT_STORAGE, "disk_full", m),
            ApiError::SlowUpload(m) => (StatusCode::REQUEST_TIMEOUT, "timeout", m),
            ApiError::TooManyUploads(m) => (StatusCode::TOO_MANY_REQUESTS, "too_many_uploads", m),
            ApiError::Busy(m) => (StatusCode::TOO_MANY_REQUESTS, "busy", m),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::QuotaExceeded { .. } => ApiError::QuotaExceeded(e.to_string()),
            StoreError::DiskFull { .. } => ApiError::DiskFull(e.to_string()),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// What a route answers: its body or an [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_blob_on_a_node_still_syncing_says_so() {
        let id = BlobId([7; 32]);
        let (status, kind, behind) = ApiError::UnknownBlob {
            id,
            synced: 10,
            network: 12,
        }
        .parts();
        assert_eq!((status, kind), (StatusCode::NOT_FOUND, "unknown_blob"));
        assert!(
            behind.contains("still syncing (the network is at 12)"),
            "{behind}"
        );
        let (_, _, level) = ApiError::UnknownBlob {
            id,
            synced: 12,
            network: 12,
        }
        .parts();
        assert!(
            level.ends_with("no block up to height 12 registers it"),
            "{level}"
        );
    }
}
