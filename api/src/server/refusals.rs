//! Hyper answers a request it cannot parse (garbage, a bad `Content-Length`, a URI too
//! long, HTTP/0.9) on its own, with an empty body. [`JsonRefusals`] sits between hyper and
//! the socket and rewrites such an answer — a 4xx or 5xx with no content type and an empty
//! body, which the API itself never sends — into the API's JSON error, so every refusal
//! reads the same.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose hyper-made refusals are rewritten as JSON.
pub(crate) struct JsonRefusals<S> {
    inner: S,
    /// A rewritten answer still to write, and how many of hyper's bytes it stands for.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<S> JsonRefusals<S> {
    pub(crate) fn new(inner: S) -> Self {
        JsonRefusals {
            inner,
            pending: None,
        }
    }
}

/// The JSON answer standing for `head`, hyper's own refusal, if it is one.
pub(crate) fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    if end != head.len() {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let status_line = text.lines().next()?;
    let code: u16 = status_line
        .strip_prefix("HTTP/1.1 ")?
        .get(..3)?
        .parse()
        .ok()?;
    let lower = text.to_ascii_lowercase();
    if code < 400 || lower.contains("content-type:") || !lower.contains("content-length: 0\r\n") {
        return None;
    }
    let (kind, error) = match code {
        414 => ("uri_too_long", "the request line is too long"),
        431 => ("headers_too_large", "the request's headers are too large"),
        400 => (
            "bad_request",
            "malformed HTTP request (its request line, a header or its Content-Length)",
        ),
        _ => ("refused", "the request was refused before it was read"),
    };
    let body = format!(r#"{{"kind":"{kind}","error":"{error}"}}"#);
    Some(
        format!(
            "{status_line}\r\ncontent-type: application/json\r\nconnection: close\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonRefusals<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonRefusals<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending.is_none() {
            match rewrite(buf) {
                Some(answer) => self.pending = Some((answer, 0, buf.len())),
                None => return Pin::new(&mut self.inner).poll_write(cx, buf),
            }
        }
        let this = &mut *self;
        let Some((answer, written, stands_for)) = this.pending.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while *written < answer.len() {
            match Pin::new(&mut this.inner).poll_write(cx, &answer[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let stands_for = *stands_for;
        this.pending = None;
        Poll::Ready(Ok(stands_for))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_s_empty_refusals_become_json_and_nothing_else_changes() {
        let hyper = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: Mon, 07 Dec 2026 22:37:58 GMT\r\n\r\n";
        let answer = String::from_utf8(rewrite(hyper).expect("rewritten")).expect("utf8");
        assert!(
            answer.starts_with("HTTP/1.1 414 URI Too Long\r\n"),
            "{answer}"
        );
        assert!(
            answer.ends_with(r#"{"kind":"uri_too_long","error":"the request line is too long"}"#)
        );
        // The API's own answers, successes and bodies pass untouched.
        for untouched in [
            &b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nbody",
            b"some body bytes",
        ] {
            assert_eq!(rewrite(untouched), None);
        }
    }
}
