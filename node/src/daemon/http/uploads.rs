//! Resumable uploads. `POST /v1/uploads?size=N` opens a session, checked as a put is
//! (policy, epochs, room, balance) before any byte is sent; `PATCH /v1/uploads/{id}` with
//! `Upload-Offset: K` appends bytes from K; `GET` says how far it got; `DELETE` gives it
//! up. A dropped or cut-off request loses nothing it delivered: the uploader that opened
//! the session (its id is the capability, and only the same client address may use it)
//! resumes at the offset, within the lease, which only data renews (an empty request does
//! not). The last byte finishes the blob, which is then registered exactly as a put's.
//!
//! Received bytes are an upload in progress of the store: never served, not counted as
//! stored (`receiving_bytes` in the status), discarded when the session is given up or its
//! lease ends, and at a restart. Sessions are bounded per client address and in all, and a
//! client's sessions together may claim at most half the room the node has for uploads.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use nexus_storage::BlobWriter;

use super::blobs::{checked_epochs, finish_and_register, preflight, receive, InFlight, Policy};
use crate::daemon::Node;
use nexus_api::server::error::{ApiError, ApiResult};
use nexus_api::server::listener::{client_of, ClientAddr};
use nexus_api::types::UploadView;

/// Sessions open at once, all clients together. Each holds at most one partial chunk
/// in memory (256 KiB), so this bounds them to 64 MiB.
pub(crate) const MAX_SESSIONS: usize = 256;
/// Sessions one client address may hold open at once: as many as it may have
/// connections (`nexus put` of many files at once opens one each).
pub(crate) const MAX_SESSIONS_PER_CLIENT: usize =
    nexus_api::server::listener::MAX_CONNECTIONS_PER_CLIENT;
/// A session not used for this long is given up and its bytes discarded.
pub(crate) const SESSION_LEASE: Duration = Duration::from_secs(10 * 60);
/// The request header saying where appended bytes start.
pub(crate) const UPLOAD_OFFSET: &str = "upload-offset";

/// Open upload sessions by id.
#[derive(Default)]
pub(crate) struct UploadSessions {
    open: Mutex<HashMap<String, Session>>,
}

struct Session {
    client: IpAddr,
    size: u64,
    policy: Policy,
    epochs: u64,
    lease_until: Instant,
    /// Bytes received so far.
    offset: u64,
    /// The blob being written; `None` while a request appends to it.
    writer: Option<BlobWriter>,
}

/// A session's writer, taken by one request; given back (lease renewed) when dropped,
/// whatever became of the request.
struct Held {
    node: Arc<Node>,
    id: String,
    /// Bytes the upload declared.
    size: u64,
    writer: Option<BlobWriter>,
}

impl UploadSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session for `client` over the writer `start` makes, unless a bound is
    /// reached (then nothing is started): the number of sessions, or the room they claim —
    /// a client's sessions may declare at most half of `room` (the node's room left for
    /// uploads, if bounded) with what they already received.
    fn open(
        &self,
        client: IpAddr,
        size: u64,
        policy: Policy,
        epochs: u64,
        room: Option<u64>,
        start: impl FnOnce() -> ApiResult<BlobWriter>,
    ) -> ApiResult<String> {
        let mut open = self.lock();
        let mine: Vec<&Session> = open.values().filter(|s| s.client == client).collect();
        if open.len() >= MAX_SESSIONS || mine.len() >= MAX_SESSIONS_PER_CLIENT {
            return Err(ApiError::TooManyUploads(format!(
                "too many resumable uploads open ({} of {MAX_SESSIONS_PER_CLIENT} from \
                 this client, {} of {MAX_SESSIONS} in all): finish or delete one",
                mine.len(),
                open.len()
            )));
        }
        if let Some(room) = room {
            let declared: u64 = mine.iter().map(|s| s.size).sum::<u64>() + size;
            let received: u64 = mine.iter().map(|s| s.offset).sum();
            let share = room.saturating_add(received) / 2;
            if declared > share {
                return Err(ApiError::TooManyUploads(format!(
                    "this client's resumable uploads would claim {declared} bytes, more than \
                     half the {} bytes this node has for uploads: finish one first, or send \
                     the file in one request",
                    room.saturating_add(received)
                )));
            }
        }
        let writer = start()?;
        let id = hex::encode(rand::random::<[u8; 16]>());
        open.insert(
            id.clone(),
            Session {
                client,
                size,
                policy,
                epochs,
                lease_until: Instant::now() + SESSION_LEASE,
                offset: 0,
                writer: Some(writer),
            },
        );
        Ok(id)
    }

    /// The session `id` of `client` (another client's is as unknown as a missing one).
    fn find<'a>(
        open: &'a mut HashMap<String, Session>,
        id: &str,
        client: IpAddr,
    ) -> ApiResult<&'a mut Session> {
        open.get_mut(id)
            .filter(|s| s.client == client)
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "no upload {id:?}: it was finished, given up, or its lease of {} min ended",
                    SESSION_LEASE.as_secs() / 60
                ))
            })
    }

    /// Where session `id` stands.
    fn view(&self, id: &str, client: IpAddr) -> ApiResult<UploadView> {
        let mut open = self.lock();
        let s = Self::find(&mut open, id, client)?;
        Ok(view(id, s))
    }

    /// Takes the writer of session `id` for a request appending at `offset`.
    fn take(&self, node: &Arc<Node>, id: &str, client: IpAddr, offset: u64) -> ApiResult<Held> {
        let mut open = self.lock();
        let s = Self::find(&mut open, id, client)?;
        if s.offset != offset {
            return Err(ApiError::Conflict(format!(
                "the upload is at offset {}, not {offset}: send from there",
                s.offset
            )));
        }
        let writer = s.writer.take().ok_or_else(|| {
            ApiError::Conflict("another request is appending to this upload".into())
        })?;
        Ok(Held {
            node: node.clone(),
            id: id.to_string(),
            size: s.size,
            writer: Some(writer),
        })
    }

    /// Removes session `id` and returns its writer (to finish or discard), if it is not
    /// in use by a request.
    fn remove(&self, id: &str, client: IpAddr) -> ApiResult<(BlobWriter, Policy, u64)> {
        let mut open = self.lock();
        let s = Self::find(&mut open, id, client)?;
        if s.writer.is_none() {
            return Err(ApiError::Conflict(
                "a request is appending to this upload".into(),
            ));
        }
        let s = open.remove(id).expect("found above");
        Ok((s.writer.expect("checked above"), s.policy, s.epochs))
    }

    /// Gives session `id` its writer back after a request; the lease is renewed (from
    /// `now`) only if the request delivered bytes.
    fn give_back(&self, id: &str, writer: BlobWriter, now: Instant) {
        let mut open = self.lock();
        if let Some(s) = open.get_mut(id) {
            if writer.size() > s.offset {
                s.offset = writer.size();
                s.lease_until = now + SESSION_LEASE;
            }
            s.writer = Some(writer);
        }
    }

    /// Closes the sessions whose lease ended by `now` and returns their writers, whose
    /// drop discards the bytes (a session in use is not expired).
    pub(crate) fn expire(&self, now: Instant) -> Vec<BlobWriter> {
        let mut open = self.lock();
        let ended: Vec<String> = open
            .iter()
            .filter(|(_, s)| s.lease_until <= now && s.writer.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        ended
            .into_iter()
            .filter_map(|id| open.remove(&id).and_then(|s| s.writer))
            .collect()
    }

    /// Sessions open.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

fn view(id: &str, s: &Session) -> UploadView {
    UploadView {
        upload: id.to_string(),
        offset: s.offset,
        size: s.size,
        policy: s.policy.name().to_string(),
        lease_secs: s
            .lease_until
            .saturating_duration_since(Instant::now())
            .as_secs(),
    }
}

impl Held {
    fn writer(&mut self) -> &mut BlobWriter {
        self.writer
            .as_mut()
            .expect("held until dropped or finished")
    }

    /// Ends the session: its writer, policy and epochs, to finish the blob with.
    fn finish(mut self, client: IpAddr) -> ApiResult<(BlobWriter, Policy, u64)> {
        let writer = self.writer.take().expect("held until dropped or finished");
        let mut open = self.node.upload_sessions.lock();
        let s = UploadSessions::find(&mut open, &self.id, client)?;
        let (policy, epochs) = (s.policy, s.epochs);
        open.remove(&self.id);
        Ok((writer, policy, epochs))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        self.node
            .upload_sessions
            .give_back(&self.id, writer, Instant::now());
    }
}

/// Query of `POST /v1/uploads`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct OpenQuery {
    /// Bytes the upload will send.
    size: u64,
    /// Epochs to pay for.
    epochs: Option<u64>,
    /// `replicated` (default), `erasure` or `das`.
    policy: Option<String>,
}

/// `POST /v1/uploads`: opens a session once everything a put checks before its body
/// holds for `size` bytes.
pub(super) async fn open(
    State(node): State<Arc<Node>>,
    addr: Option<Extension<ClientAddr>>,
    Query(query): Query<OpenQuery>,
) -> ApiResult<Response> {
    let policy = Policy::parse(query.policy.as_deref())?;
    let epochs = checked_epochs(query.epochs)?;
    node.store.check_room(query.size)?;
    preflight(&node, policy, query.size, epochs)?;
    let client = client_of(addr);
    let room = node.store.room();
    let id = node
        .upload_sessions
        .open(client, query.size, policy, epochs, room, || {
            Ok(node.store.ingest_staged(super::blobs::fresh_stage())?)
        })?;
    let view = node.upload_sessions.view(&id, client)?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `GET /v1/uploads/{id}`: how far the upload got, and how long it may wait.
pub(super) async fn status(
    State(node): State<Arc<Node>>,
    addr: Option<Extension<ClientAddr>>,
    Path(id): Path<String>,
) -> ApiResult<Json<UploadView>> {
    Ok(Json(node.upload_sessions.view(&id, client_of(addr))?))
}

/// `DELETE /v1/uploads/{id}`: gives the upload up; its bytes are discarded.
pub(super) async fn abandon(
    State(node): State<Arc<Node>>,
    addr: Option<Extension<ClientAddr>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (writer, _, _) = node.upload_sessions.remove(&id, client_of(addr))?;
    tokio::task::spawn_blocking(move || drop(writer)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /v1/uploads/{id}`: appends the body at `Upload-Offset`. Before the last byte
/// it answers `200` with where the upload stands; with the last byte it finishes and
/// registers the blob and answers `201` with the receipt, as a put does.
pub(super) async fn append(
    State(node): State<Arc<Node>>,
    addr: Option<Extension<ClientAddr>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let offset = headers
        .get(UPLOAD_OFFSET)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "a {UPLOAD_OFFSET} header (the byte the body starts at) is required"
            ))
        })?;
    let client = client_of(addr);
    let slot = node.write_slots.acquire(client).await;
    let _in_flight = InFlight::count(&node);
    let mut held = node.upload_sessions.take(&node, &id, client, offset)?;
    let size = held.size;
    receive(held.writer(), body, Some(size), &slot).await?;
    if held.writer().size() < size {
        drop(held);
        let view = node.upload_sessions.view(&id, client)?;
        return Ok(Json(view).into_response());
    }
    let (writer, policy, epochs) = held.finish(client)?;
    let receipt = finish_and_register(&node, writer, policy, epochs).await?;
    Ok((StatusCode::CREATED, Json(receipt)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer_with(store: &nexus_storage::Store, bytes: usize) -> BlobWriter {
        let mut writer = store
            .ingest_staged(super::super::blobs::fresh_stage())
            .expect("writer");
        writer.write(&vec![7u8; bytes]).expect("write");
        writer
    }

    #[test]
    fn sessions_past_their_lease_close_and_their_bytes_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = nexus_storage::Store::open(dir.path(), Some(1 << 20)).expect("store");
        let sessions = UploadSessions::default();
        let client = IpAddr::from([10, 0, 0, 1]);
        let opened = sessions.open(client, 1 << 20, Policy::Replicated, 1, None, || {
            Ok(writer_with(&store, 300_000))
        });
        assert!(opened.is_ok());
        let stats = store.stats().expect("stats");
        assert_eq!((stats.used_bytes, stats.receiving_bytes), (0, 300_000));
        assert!(sessions.expire(Instant::now()).is_empty());
        let ended = sessions.expire(Instant::now() + SESSION_LEASE);
        assert_eq!((ended.len(), sessions.len()), (1, 0));
        drop(ended);
        let stats = store.stats().expect("stats");
        assert_eq!((stats.used_bytes, stats.receiving_bytes), (0, 0));
    }

    #[test]
    fn only_data_renews_a_lease() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = nexus_storage::Store::open(dir.path(), None).expect("store");
        let sessions = UploadSessions::default();
        let client = IpAddr::from([10, 0, 0, 1]);
        let id = sessions
            .open(client, 1000, Policy::Replicated, 1, None, || {
                Ok(writer_with(&store, 0))
            })
            .expect("opened");
        let lease = |s: &UploadSessions| s.lock()[&id].lease_until;
        let first = lease(&sessions);
        let later = Instant::now() + SESSION_LEASE / 2;
        // An empty request: the writer comes back as it went.
        let writer = sessions.lock().get_mut(&id).and_then(|s| s.writer.take());
        sessions.give_back(&id, writer.expect("writer"), later);
        assert_eq!(
            lease(&sessions),
            first,
            "an empty request renewed the lease"
        );
        let mut writer = sessions
            .lock()
            .get_mut(&id)
            .and_then(|s| s.writer.take())
            .expect("writer");
        writer.write(b"data").expect("write");
        sessions.give_back(&id, writer, later);
        assert_eq!(lease(&sessions), later + SESSION_LEASE);
    }

    #[test]
    fn a_client_s_sessions_claim_at_most_half_the_room() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = nexus_storage::Store::open(dir.path(), None).expect("store");
        let sessions = UploadSessions::default();
        let (squatter, owner) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let room = 20 << 20;
        let open = |client, size| {
            sessions.open(client, size, Policy::Replicated, 1, Some(room), || {
                Ok(writer_with(&store, 0))
            })
        };
        assert!(open(squatter, 8 << 20).is_ok());
        assert!(matches!(
            open(squatter, 8 << 20),
            Err(ApiError::TooManyUploads(_))
        ));
        assert!(
            open(owner, 4 << 20).is_ok(),
            "another client has its own half"
        );
    }

    #[test]
    fn sessions_are_bounded_per_client_and_in_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = nexus_storage::Store::open(dir.path(), None).expect("store");
        let sessions = UploadSessions::default();
        let open = |client: IpAddr| {
            sessions.open(client, 10, Policy::Replicated, 1, None, || {
                Ok(writer_with(&store, 0))
            })
        };
        let me = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..MAX_SESSIONS_PER_CLIENT {
            assert!(open(me).is_ok());
        }
        assert!(matches!(open(me), Err(ApiError::TooManyUploads(_))));
        for i in 0..(MAX_SESSIONS - MAX_SESSIONS_PER_CLIENT) as u32 {
            assert!(open(IpAddr::from((0x0b00_0000 + i / 2).to_be_bytes())).is_ok());
        }
        let stranger = IpAddr::from([12, 0, 0, 1]);
        assert!(matches!(open(stranger), Err(ApiError::TooManyUploads(_))));
        // Not usable by another client than its own.
        let id = sessions
            .lock()
            .iter()
            .find(|(_, s)| s.client == me)
            .map(|(id, _)| id.clone());
        let id = id.expect("a session of mine");
        assert!(matches!(
            sessions.view(&id, stranger),
            Err(ApiError::NotFound(_))
        ));
        assert!(sessions.view(&id, me).is_ok());
    }
}
