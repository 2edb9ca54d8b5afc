//! The CLI's HTTP client for a node's API, turning failures into sentences a user can act on.
//! One client per process, so that requests share connections; a node that answers it is
//! too busy for this client right now (too many connections from its address, a request of
//! the same kind in progress) is asked again after a growing, jittered pause.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use rand::Rng as _;
use reqwest::{Response, StatusCode, Url};
use serde::de::DeserializeOwned;

/// The node the CLI talks to when neither `--node` nor `NEXUS_NODE` says otherwise.
pub const DEFAULT_NODE: &str = "http://127.0.0.1:7100";

use crate::types::ErrorBody;

/// How long a request is asked again of a node that answers it is busy.
const BUSY_RETRY_FOR: Duration = Duration::from_secs(120);
/// The first pause before asking again; each next one doubles, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(4);

/// A node's API at `base`.
#[derive(Clone)]
pub struct NodeClient {
    base: Url,
    http: reqwest::Client,
}

impl NodeClient {
    /// A client for the node at `base` (e.g. [`DEFAULT_NODE`]).
    pub fn new(base: &str) -> Result<NodeClient> {
        let base = Url::parse(base).map_err(|e| anyhow!("{base:?} is not a node URL: {e}"))?;
        Ok(NodeClient {
            base,
            http: reqwest::Client::new(),
        })
    }

    /// The HTTP client, to build a request sent once with [`NodeClient::attempt_once`].
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The URL of API path `path` on this node.
    pub fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path)
            .map_err(|e| anyhow!("bad API path {path}: {e}"))
    }

    /// Sends a request built by `build` (again, while the node says it is busy), mapping
    /// transport and API errors.
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Response> {
        self.attempt(build).await.map_err(Failure::into_error)
    }

    /// Like [`NodeClient::send`], telling a broken connection from the node's answer.
    pub async fn attempt(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Response, Failure> {
        let started = Instant::now();
        let mut pause = FIRST_PAUSE;
        loop {
            match self.attempt_once(build(&self.http)).await {
                Err(failure) if failure.is_busy() && started.elapsed() < BUSY_RETRY_FOR => {
                    let jitter = rand::thread_rng().gen_range(0..=pause.as_millis() as u64);
                    tokio::time::sleep(pause + Duration::from_millis(jitter)).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                outcome => return outcome,
            }
        }
    }

    /// Sends `request` once (for a body that cannot be sent again), mapping errors.
    pub async fn attempt_once(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<Response, Failure> {
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Transport(self.unreachable(e)))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let (kind, error) = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => (body.kind, anyhow!("{}", body.error)),
            Err(_) => (String::new(), anyhow!("the node answered {status}: {text}")),
        };
        Err(Failure::Answer {
            status,
            kind,
            error,
        })
    }

    fn unreachable(&self, e: reqwest::Error) -> anyhow::Error {
        if e.is_connect() {
            anyhow!(
                "node not reachable at {}: is it running? Start a local network with `nexus devnet`, or point --node / NEXUS_NODE at a running node",
                self.base
            )
        } else {
            // reqwest's own message ("error sending request") hides the cause: show them all.
            let mut message = format!("request to {} failed: {e}", self.base);
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                message.push_str(&format!(": {c}"));
                cause = c.source();
            }
            anyhow!(message)
        }
    }

    /// GETs `path` and decodes the JSON answer.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = self.url(path)?;
        let response = self.send(|http| http.get(url.clone())).await?;
        response
            .json()
            .await
            .map_err(|e| anyhow!("malformed answer from the node: {e}"))
    }
}

/// Why a request got no successful answer.
#[derive(Debug)]
pub enum Failure {
    /// The node was unreachable or the connection broke.
    Transport(anyhow::Error),
    /// The node answered with an error.
    Answer {
        /// Its status.
        status: StatusCode,
        /// Its machine-readable kind (the `kind` of the API's error body).
        kind: String,
        /// Its message.
        error: anyhow::Error,
    },
}

impl Failure {
    /// Whether the node turned the request away for now, before doing anything with it:
    /// too many connections from this address, or one of this client's requests of the
    /// same kind still in progress. Asking again later is safe.
    pub fn is_busy(&self) -> bool {
        matches!(self, Failure::Answer { status, kind, .. }
            if *status == StatusCode::TOO_MANY_REQUESTS
                && (kind == "too_many_connections" || kind == "busy"))
    }

    /// The sentence for the user.
    pub fn into_error(self) -> anyhow::Error {
        match self {
            Failure::Transport(e) | Failure::Answer { error: e, .. } => e,
        }
    }
}
