//! Length-prefixed postcard framing with a hard size cap per direction, used by every
//! request-response protocol.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of postcard. A frame
//! longer than the cap is refused before any of its body is read.

use std::io;
use std::marker::PhantomData;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use serde::{de::DeserializeOwned, Serialize};

/// Why bytes from a peer could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The announced length exceeds the protocol's cap.
    #[error("message of {found} bytes exceeds the {cap}-byte cap")]
    TooLarge {
        /// The cap.
        cap: usize,
        /// Announced length.
        found: usize,
    },
    /// The body is not a valid encoding of the expected message.
    #[error("malformed message: {0}")]
    Malformed(String),
}

impl From<DecodeError> for io::Error {
    fn from(e: DecodeError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Bytes this crate carries without reading: values of the storage layer (blocks with
/// their transactions, transactions) that only full nodes decode, with the same caps and
/// [`decode`] as every other message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct Encoded(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl Encoded {
    /// The postcard encoding of `value`.
    pub fn of<T: Serialize>(value: &T) -> Encoded {
        Encoded(encode(value))
    }

    /// Decodes the value, refusing more than `cap` bytes or trailing bytes.
    pub fn decode<T: DeserializeOwned>(&self, cap: usize) -> Result<T, DecodeError> {
        decode(&self.0, cap)
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Encodes `msg` as postcard (without the length prefix).
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    // Our message types are plain data; encoding into a Vec cannot fail.
    postcard::to_stdvec(msg).unwrap_or_default()
}

/// Decodes a message body of at most `cap` bytes; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], cap: usize) -> Result<T, DecodeError> {
    if bytes.len() > cap {
        return Err(DecodeError::TooLarge {
            cap,
            found: bytes.len(),
        });
    }
    let (msg, rest) =
        postcard::take_from_bytes(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    Ok(msg)
}

async fn read_frame<T, R>(io: &mut R, cap: usize) -> io::Result<T>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin + Send,
{
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > cap {
        return Err(DecodeError::TooLarge { cap, found: len }.into());
    }
    let mut body = vec![0; len];
    io.read_exact(&mut body).await?;
    Ok(decode(&body, cap)?)
}

async fn write_frame<W>(io: &mut W, body: Vec<u8>, cap: usize) -> io::Result<()>
where
    W: AsyncWrite + Unpin + Send,
{
    if body.len() > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            DecodeError::TooLarge {
                cap,
                found: body.len(),
            },
        ));
    }
    let len =
        u32::try_from(body.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(&body).await?;
    io.close().await
}

/// Caps of one request-response protocol, in bytes per message.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Largest request accepted.
    pub request: usize,
    /// Largest response accepted.
    pub response: usize,
}

/// A request-response codec for `Req`/`Resp` with the given caps.
pub struct CappedCodec<Req, Resp> {
    caps: Caps,
    _types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> CappedCodec<Req, Resp> {
    /// A codec enforcing `caps`.
    pub fn new(caps: Caps) -> Self {
        CappedCodec {
            caps,
            _types: PhantomData,
        }
    }
}

impl<Req, Resp> Clone for CappedCodec<Req, Resp> {
    fn clone(&self) -> Self {
        Self::new(self.caps)
    }
}

impl<Req, Resp> libp2p::request_response::Codec for CappedCodec<Req, Resp>
where
    Req: Serialize + DeserializeOwned + Send + 'static,
    Resp: Serialize + DeserializeOwned + Send + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Req>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.caps.request).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.caps.response).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Req) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, encode(&req), self.caps.request).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Resp,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, encode(&res), self.caps.response).await
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use libp2p::request_response::Codec as _;

    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_frames_are_refused_unread() {
        let mut codec = CappedCodec::<Vec<u32>, String>::new(Caps {
            request: 64,
            response: 8,
        });
        let proto = StreamProtocol::new("/test/1");
        let mut buf = futures::io::Cursor::new(Vec::new());
        block_on(codec.write_request(&proto, &mut buf, vec![1, 2, 3])).expect("write");
        let mut rd = futures::io::Cursor::new(buf.into_inner());
        let back = block_on(codec.read_request(&proto, &mut rd)).expect("read");
        assert_eq!(back, vec![1, 2, 3]);

        let mut big = futures::io::Cursor::new(Vec::new());
        let err = block_on(codec.write_response(&proto, &mut big, "x".repeat(20)));
        assert!(err.is_err(), "writer refuses oversized messages");

        // A frame announcing 4 GiB is refused without allocating it.
        let mut rd = futures::io::Cursor::new(vec![0xff, 0xff, 0xff, 0xff, 1, 2]);
        let err = block_on(codec.read_response(&proto, &mut rd)).expect_err("too large");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        // A truncated body is an error, not a hang or panic.
        let mut rd = futures::io::Cursor::new(vec![0, 0, 0, 5, 1]);
        assert!(block_on(codec.read_request(&proto, &mut rd)).is_err());
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode(&7u32);
        bytes.push(0);
        assert!(matches!(
            decode::<u32>(&bytes, 16),
            Err(DecodeError::Malformed(_))
        ));
    }
}
