//! The CLI's HTTP client for a node's API, turning failures into sentences a user can act on.

use anyhow::{anyhow, Result};
use reqwest::{Response, Url};
use serde::de::DeserializeOwned;

/// The node the CLI talks to when neither `--node` nor `NEXUS_NODE` says otherwise.
pub(crate) const DEFAULT_NODE: &str = "http://127.0.0.1:7100";

use crate::api::ErrorBody;

/// A node's API at `base`.
#[derive(Clone)]
pub(crate) struct NodeClient {
    base: Url,
    http: reqwest::Client,
}

impl NodeClient {
    /// A client for the node at `base` (e.g. [`DEFAULT_NODE`]).
    pub(crate) fn new(base: &str) -> Result<NodeClient> {
        let base = Url::parse(base).map_err(|e| anyhow!("{base:?} is not a node URL: {e}"))?;
        Ok(NodeClient {
            base,
            http: reqwest::Client::new(),
        })
    }

    pub(crate) fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path)
            .map_err(|e| anyhow!("bad API path {path}: {e}"))
    }

    /// Sends a request built by `build`, mapping transport and API errors.
    pub(crate) async fn send(
        &self,
        build: impl FnOnce(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Response> {
        self.attempt(build).await.map_err(Failure::into_error)
    }

    /// Like [`NodeClient::send`], telling a broken connection from the node's answer.
    pub(crate) async fn attempt(
        &self,
        build: impl FnOnce(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Response, Failure> {
        let response = build(&self.http)
            .send()
            .await
            .map_err(|e| Failure::Transport(self.unreachable(e)))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let error = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => anyhow!("{}", body.error),
            Err(_) => anyhow!("the node answered {status}: {text}"),
        };
        Err(Failure::Answer { status, error })
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
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = self.url(path)?;
        let response = self.send(|http| http.get(url)).await?;
        response
            .json()
            .await
            .map_err(|e| anyhow!("malformed answer from the node: {e}"))
    }
}

/// Why a request got no successful answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The node was unreachable or the connection broke.
    Transport(anyhow::Error),
    /// The node answered with an error.
    Answer {
        /// Its status.
        status: reqwest::StatusCode,
        /// Its message.
        error: anyhow::Error,
    },
}

impl Failure {
    /// The sentence for the user.
    pub(crate) fn into_error(self) -> anyhow::Error {
        match self {
            Failure::Transport(e) | Failure::Answer { error: e, .. } => e,
        }
    }
}
